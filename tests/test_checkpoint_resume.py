"""Checkpoints in Dassl's layout (slim: learnable tensors only), loading reference checkpoints, and resume."""
import json
import os

import pytest
import torch
from support.dassl_saved import dassl_training_state
from support.runs import run_train, run_train_interrupted, train_argv

from trainers.run.checkpoints import load_checkpoint, save_checkpoint


def model_dir(out):
    return os.path.join(str(out), "prompt_learner")


def files(out):
    return sorted(os.listdir(model_dir(out)))


def read_checkpoint_file(out):
    with open(os.path.join(model_dir(out), "checkpoint")) as f:
        return f.read().strip()


def final_ctx(out, epoch):
    return torch.load(os.path.join(model_dir(out), f"model.pth.tar-{epoch}"), weights_only=True)["state_dict"]["ctx"]


# ---- layout and round trip ---------------------------------------------------------------------------------


def test_checkpoint_layout_and_round_trip(tmp_path, shapes_root, tiny_clip_path):
    out = tmp_path / "run"
    trainer = run_train(*train_argv("CoOp", shapes_root, tiny_clip_path, out, epochs=2))
    assert files(out) == ["checkpoint", "model.pth.tar-2"]
    assert read_checkpoint_file(out) == "model.pth.tar-2"

    checkpoint = torch.load(os.path.join(model_dir(out), "model.pth.tar-2"), map_location="cpu", weights_only=True)
    assert {"state_dict", "epoch", "optimizer", "scheduler", "val_result"} <= set(checkpoint)
    assert checkpoint["epoch"] == 2 and checkpoint["val_result"] is None
    assert list(checkpoint["state_dict"]) == ["ctx"]  # no token_prefix / token_suffix, no CLIP weights
    ctx = trainer.model.prompt_learner.ctx.detach()
    assert torch.equal(checkpoint["state_dict"]["ctx"], ctx)
    momentum = checkpoint["optimizer"]["state"][0]["momentum_buffer"]
    assert momentum.shape == ctx.shape and momentum.abs().sum() > 0
    assert checkpoint["scheduler"]["last_epoch"] == 2  # the project's own schedule, under both runtimes

    fresh = run_train("--no-train", *train_argv("CoOp", shapes_root, tiny_clip_path, tmp_path / "fresh", seed=2,
                                                subsample="new"))
    fresh.model.prompt_learner.ctx.data.zero_()
    fresh.load_model(str(out), epoch=2)
    assert torch.equal(fresh.model.prompt_learner.ctx, ctx)
    fresh.model.prompt_learner.ctx.data.zero_()
    fresh.load_model(str(out))  # no epoch, no model-best: the latest checkpoint named in `checkpoint`
    assert torch.equal(fresh.model.prompt_learner.ctx, ctx)


def test_save_checkpoint_is_dassl_compatible(tmp_path):
    directory = str(tmp_path / "m")
    state = {"state_dict": {"module.ctx": torch.ones(2, 3)}, "epoch": 7, "optimizer": None, "scheduler": None,
             "val_result": 55.0}
    save_checkpoint(state, directory, is_best=True)
    assert sorted(os.listdir(directory)) == ["checkpoint", "model-best.pth.tar", "model.pth.tar-7"]
    with open(os.path.join(directory, "checkpoint")) as f:
        assert f.read() == "model.pth.tar-7\n"
    for name in ("model.pth.tar-7", "model-best.pth.tar"):
        loaded = load_checkpoint(os.path.join(directory, name))
        assert list(loaded["state_dict"]) == ["ctx"] and loaded["epoch"] == 7 and loaded["val_result"] == 55.0
    with pytest.raises(FileNotFoundError, match="model.pth.tar-8"):
        load_checkpoint(os.path.join(directory, "model.pth.tar-8"))


def write_reference_coop_checkpoint(directory, epoch, ctx, n_cls):
    """What the reference CoOp saves: ctx plus the class-dependent buffers of *its* class list, fp16."""
    width = ctx.shape[-1]
    state_dict = {"ctx": ctx.half(), "token_prefix": torch.randn(n_cls, 1, width).half(),
                  "token_suffix": torch.randn(n_cls, 77 - 1 - ctx.shape[0], width).half()}
    os.makedirs(directory, exist_ok=True)
    torch.save({"state_dict": state_dict, "epoch": epoch, **dassl_training_state([ctx], epochs=epoch),
                "val_result": None},
               os.path.join(directory, f"model.pth.tar-{epoch}"))


def test_reference_checkpoint_with_buffers_of_another_class_count_loads(tmp_path, shapes_root, tiny_clip_path):
    ref = tmp_path / "reference_run"
    ctx = torch.randn(4, 64, generator=torch.Generator().manual_seed(0))
    write_reference_coop_checkpoint(model_dir(ref), 5, ctx, n_cls=10)  # 10 classes there, 3 new classes here
    out = tmp_path / "eval"
    trainer = run_train("--eval-only", "--model-dir", ref, "--load-epoch", 5,
                        *train_argv("CoOp", shapes_root, tiny_clip_path, out, subsample="new"))
    assert torch.equal(trainer.model.prompt_learner.ctx.detach(), ctx.half().float())
    assert trainer.model.prompt_learner.token_prefix.shape[0] == 3  # the buffers come from our class names
    assert json.loads((out / "results.json").read_text())["n"] == 9


def test_checkpoint_that_does_not_fit_is_refused(tmp_path, shapes_root, tiny_clip_path):
    ref = tmp_path / "other"
    os.makedirs(model_dir(ref))
    torch.save({"state_dict": {"context": torch.zeros(4, 64)}, "epoch": 1},
               os.path.join(model_dir(ref), "model.pth.tar-1"))
    with pytest.raises(KeyError, match=r"model\.pth\.tar-1.*missing \['ctx'\].*unexpected \['context'\]"):
        run_train("--eval-only", "--model-dir", ref, "--load-epoch", 1,
                  *train_argv("CoOp", shapes_root, tiny_clip_path, tmp_path / "eval", subsample="new"))


# ---- resume ------------------------------------------------------------------------------------------------


def test_resume_after_interruption_matches_an_uninterrupted_run(tmp_path, shapes_root, tiny_clip_path, capsys):
    def args(out):
        # random context init, so the final context depends on every epoch
        return train_argv("CoOp", shapes_root, tiny_clip_path, out, "TRAINER.COOP.CTX_INIT", "",
                          "TRAINER.COOP.N_CTX", 4, "OPTIM.LR", 0.05, epochs=4)

    reference = tmp_path / "uninterrupted"
    run_train(*args(reference))
    assert files(reference) == ["checkpoint", "model.pth.tar-4"]
    reference_ctx = final_ctx(reference, 4)
    reference_acc = json.loads((reference / "results.json").read_text())["accuracy"]

    out = tmp_path / "interrupted"
    run_train_interrupted(2, *args(out))
    assert not (out / "results.json").exists()
    assert files(out) == ["checkpoint", "model.pth.tar-2"]  # the resume point of epoch 1 was removed
    assert read_checkpoint_file(out) == "model.pth.tar-2"
    interrupted_ctx = final_ctx(out, 2)
    assert not torch.equal(interrupted_ctx, reference_ctx)  # epochs 3 and 4 still change the context
    capsys.readouterr()

    run_train(*args(out))  # the same command again
    log = capsys.readouterr().out
    assert "Found checkpoint" in log and "Previous epoch: 2" in log
    assert "Restored the random number generator states" in log
    assert "epoch [3/4]" in log and "epoch [1/4]" not in log and "epoch [2/4]" not in log
    assert files(out) == ["checkpoint", "model.pth.tar-4"]
    assert torch.equal(final_ctx(out, 4), reference_ctx)
    record = json.loads((out / "results.json").read_text())
    assert record["accuracy"] == reference_acc

    run_train(*args(out))  # a finished run: nothing left to train, the result is recomputed
    log = capsys.readouterr().out
    assert "Previous epoch: 4" in log and "epoch [" not in log
    assert torch.equal(final_ctx(out, 4), reference_ctx)
    assert json.loads((out / "results.json").read_text())["accuracy"] == reference_acc


def test_checkpoint_freq_checkpoints_are_kept(tmp_path, shapes_root, tiny_clip_path):
    out = tmp_path / "freq"
    run_train(*train_argv("CoOp", shapes_root, tiny_clip_path, out, "TRAIN.CHECKPOINT_FREQ", 2, epochs=5))
    assert files(out) == ["checkpoint", "model.pth.tar-2", "model.pth.tar-4", "model.pth.tar-5"]
    assert read_checkpoint_file(out) == "model.pth.tar-5"

"""DPC over CoOp end to end: stage 1 -> stage 2 -> base and new tests, routing, checkpoints, reference keys."""
import json
import os

import pytest
import torch
from support.runs import COOP_CPU_YAML, run_train, train_argv


def coop(root, clip_path, out, *opts, subsample="base", flags=()):
    return run_train(*train_argv("CoOp", root, clip_path, out, *opts, subsample=subsample, flags=flags,
                                 print_freq=None))


def dpc(root, clip_path, out, *opts, subsample="base", flags=()):
    """DPC with its CPU config's epochs (2) unless ``opts`` say otherwise."""
    return run_train(*train_argv("DPC", root, clip_path, out, *opts, subsample=subsample, flags=flags, epochs=None,
                                 print_freq=None))


@pytest.fixture(scope="module")
def runs(tmp_path_factory, shapes12, coop_stage1, tiny_clip_path):
    """12 shape classes (6 base, 6 new): the session's CoOp stage 1 (2 epochs) and DPC stage 2 over it (2 epochs)."""
    tmp = tmp_path_factory.mktemp("dpc")
    stage2 = tmp / "dpc"
    dpc(shapes12, tiny_clip_path, stage2, "TRAINER.DPC.BACKBONE_DIR", coop_stage1)
    return {"root": shapes12, "clip": tiny_clip_path, "stage1": coop_stage1, "stage2": stage2, "tmp": tmp}


def first_test_batch(trainer):
    batch = next(iter(trainer.test_loader))
    return trainer.parse_batch_test(batch)[0]


@torch.no_grad()
def coop_logits_with_ctx(runs, out, ctx, subsample):
    """Logits of a CoOp model whose ctx is set to the given tensor."""
    host = coop(runs["root"], runs["clip"], out, subsample=subsample,
                flags=("--eval-only", "--model-dir", runs["stage1"], "--load-epoch", 2))
    host.model.prompt_learner.ctx.copy_(ctx)
    return host, host.model(first_test_batch(host))


def load_dpc(runs, out, *opts, subsample):
    return dpc(runs["root"], runs["clip"], out, *opts, subsample=subsample,
               flags=("--eval-only", "--model-dir", runs["stage2"], "--load-epoch", 2))


def test_new_accuracy_and_logits_equal_stage1_at_weight_new_zero(runs):
    tmp = runs["tmp"]
    host = coop(runs["root"], runs["clip"], tmp / "coop_new", subsample="new",
                flags=("--eval-only", "--model-dir", runs["stage1"], "--load-epoch", 2))
    wrapped = load_dpc(runs, tmp / "dpc_new", subsample="new")
    images = first_test_batch(host)
    diff = (wrapped.inference_logits(images) - host.model(images)).abs().max().item()
    assert diff <= 1e-6
    host_acc = json.loads((tmp / "coop_new" / "results.json").read_text())["accuracy"]
    dpc_acc = json.loads((tmp / "dpc_new" / "results.json").read_text())["accuracy"]
    assert dpc_acc == host_acc


def test_parallel_prompt_was_trained_and_differs_from_frozen(runs):
    checkpoint = torch.load(runs["stage2"] / "dual_prompts" / "model.pth.tar-2", weights_only=True)
    state = checkpoint["state_dict"]
    assert set(state) == {"parallel.ctx", "frozen__prompt_learner__ctx"}  # slim: P' and P only
    stage1 = torch.load(runs["stage1"] / "prompt_learner" / "model.pth.tar-2", weights_only=True)["state_dict"]
    assert torch.equal(state["frozen__prompt_learner__ctx"], stage1["ctx"])
    assert not torch.equal(state["parallel.ctx"], stage1["ctx"])
    assert checkpoint["dpc"]["host"] == "CoOp"


def test_weight_new_one_gives_the_parallel_prompt(runs):
    tmp = runs["tmp"]
    wrapped = load_dpc(runs, tmp / "dpc_new_w1", "TRAINER.DPC.WEIGHT_NEW", 1.0, subsample="new")
    parallel = wrapped.prompts.parallel.ctx.detach().clone()
    host, expected = coop_logits_with_ctx(runs, tmp / "coop_new_w1", parallel, "new")
    assert (wrapped.inference_logits(first_test_batch(host)) - expected).abs().max().item() <= 1e-6


@pytest.mark.parametrize("mode", ["parallel", "mixed"])
def test_base_logits_follow_the_mode_formula(runs, mode):
    tmp = runs["tmp"]
    wrapped = load_dpc(runs, tmp / f"dpc_base_{mode}", "TRAINER.DPC.BASE_PROMPT", mode, subsample="base")
    p_parallel = wrapped.prompts.parallel.ctx.detach().clone()
    p_frozen = wrapped.prompts.frozen()["prompt_learner.ctx"].clone()
    ctx = p_parallel if mode == "parallel" else 0.2 * p_parallel + 0.8 * p_frozen
    host, expected = coop_logits_with_ctx(runs, tmp / f"coop_base_{mode}", ctx, "base")
    assert (wrapped.inference_logits(first_test_batch(host)) - expected).abs().max().item() <= 1e-5


def test_weight_base_zero_is_the_host_alone_on_base_classes_in_parallel_mode(runs):
    """ω_b = 0 (the first point of the paper's sweep): P' has no weight on base classes, so their logits are the
    stage-1 host's, and no 1/ω_b factor follows from it (the objective is unscaled)."""
    tmp = runs["tmp"]
    wrapped = load_dpc(runs, tmp / "dpc_base_wb0", "TRAINER.DPC.WEIGHT_BASE", 0.0, subsample="base")
    assert wrapped.dpc_cfg.BASE_PROMPT == "parallel" and wrapped.objective_scale == 1.0
    host = coop(runs["root"], runs["clip"], tmp / "coop_base_wb0", subsample="base",
                flags=("--eval-only", "--model-dir", runs["stage1"], "--load-epoch", 2))
    images = first_test_batch(host)
    with torch.no_grad():
        assert torch.equal(wrapped.inference_logits(images), host.model(images))
    accuracy = [json.loads((tmp / d / "results.json").read_text())["accuracy"]
                for d in ("dpc_base_wb0", "coop_base_wb0")]
    assert accuracy[0] == accuracy[1]


def test_all_classes_of_the_training_dataset_route_to_base_and_other_datasets_to_new(runs):
    wrapped = load_dpc(runs, runs["tmp"] / "dpc_all", subsample="all")
    assert wrapped.routes_to_base()
    wrapped.trained_on = {"dataset": "Caltech101", "folder": ""}
    assert not wrapped.routes_to_base()


def test_frozen_and_parallel_prompts_do_not_share_memory(runs):
    wrapped = load_dpc(runs, runs["tmp"] / "dpc_memory", subsample="base")
    before = wrapped.prompts.frozen()["prompt_learner.ctx"].clone()
    with torch.no_grad():
        wrapped.prompts.parallel.ctx.add_(1.0)
    assert torch.equal(wrapped.prompts.frozen()["prompt_learner.ctx"], before)


def one_update(runs, out, mode):
    """The change of P' by one plain SGD step (lr 1, so that float rounding of P' stays far below it)."""
    trainer = dpc(runs["root"], runs["clip"], out, "TRAINER.DPC.BACKBONE_DIR", runs["stage1"],
                  "TRAINER.DPC.BASE_PROMPT", mode, "OPTIM.MOMENTUM", 0.0, "OPTIM.WEIGHT_DECAY", 0.0,
                  "OPTIM.LR", 1.0, "OPTIM.WARMUP_EPOCH", 0,
                  flags=("--no-train",))
    trainer.negative_pool = trainer.build_negative_pool()
    trainer.batch_idx, trainer.num_batches = 0, 10
    torch.manual_seed(0)
    batches = next(iter(trainer.train_loader_x))  # the step's batch and the next one
    trainer.ahead = trainer.choose_negatives(trainer.score_batch(batches[0]))  # negatives drawn under seed 0
    before = trainer.prompts.parallel.ctx.detach().clone()
    torch.manual_seed(1)
    trainer.forward_backward(batches)
    return trainer.prompts.parallel.ctx.detach() - before


def test_parallel_mode_update_is_one_over_weight_base_times_the_plain_update(runs):
    plain = one_update(runs, runs["tmp"] / "upd_mixed", "mixed")
    scaled = one_update(runs, runs["tmp"] / "upd_parallel", "parallel")
    assert plain.abs().max() > 0
    assert torch.allclose(scaled, plain / 0.2, rtol=1e-3, atol=1e-8)


def test_reference_command_line_runs(runs, capsys):
    out = runs["tmp"] / "sple"
    run_train(*train_argv("StackSPLE_CoOp", runs["root"], runs["clip"], out, "DATALOADER.TRAIN_X.BATCH_SIZE", 4,
                          "SPLE.BACK_CKPT_PATH", runs["stage1"], "SPLE.BACK_CKPT_EPOCH", 2, "SPLE.STACK.MODE",
                          "converse", "SPLE.STACK.WEIGHT", 0.2, "SPLE.STACK.WEIGHT_FOR_NEW", 0.0,
                          config_file=COOP_CPU_YAML, epochs=1, print_freq=None))
    log = capsys.readouterr().out
    assert "TRAINER.DPC.HOST CoOp" in log
    assert "SPLE.BACK_CKPT_PATH" in log and "TRAINER.DPC.BACKBONE_DIR" in log
    record = json.loads((out / "results.json").read_text())
    assert record["trainer"] == "StackSPLE_CoOp" and record["config"]["TRAINER"]["DPC"]["BACKBONE_EPOCH"] == 2


def test_training_without_stage1_is_a_clear_error(runs):
    with pytest.raises(ValueError, match="TRAINER.DPC.BACKBONE_DIR"):
        dpc(runs["root"], runs["clip"], runs["tmp"] / "no_stage1")


def test_wrong_stage1_epoch_names_the_folder_and_its_files(runs):
    with pytest.raises(FileNotFoundError, match=r"model\.pth\.tar-7.*model\.pth\.tar-2"):
        dpc(runs["root"], runs["clip"], runs["tmp"] / "bad_epoch", "TRAINER.DPC.BACKBONE_DIR", runs["stage1"],
            "TRAINER.DPC.BACKBONE_EPOCH", 7)


def test_image_library_json_is_a_negative_pool(runs, tmp_path):
    wrapped = load_dpc(runs, runs["tmp"] / "dpc_lib", subsample="base")
    classnames = wrapped.dm.dataset.classnames
    library = {name: [item.impath for item in wrapped.dm.dataset.train_x if item.classname == name]
               for name in classnames[:3]}
    path = tmp_path / "library.json"
    path.write_text(json.dumps(library))
    wrapped.cfg.defrost()
    wrapped.cfg.TRAINER.DPC.NEGATIVE_POOL = str(path)
    pool = wrapped.build_negative_pool()
    assert pool.classes == {0, 1, 2}
    assert pool.request([2, 0]).collect().shape == (2, 3, 32, 32)


def test_a_batch_without_room_for_negatives_trains(tmp_path, shapes_root, tiny_clip_path):
    """3 base classes and batch 4: every class is a ground truth, so no negative can be drawn."""
    stage1 = tmp_path / "coop"
    coop(shapes_root, tiny_clip_path, stage1)
    dpc(shapes_root, tiny_clip_path, tmp_path / "dpc", "TRAINER.DPC.BACKBONE_DIR", stage1, "OPTIM.MAX_EPOCH", 1)
    assert json.loads((tmp_path / "dpc" / "results.json").read_text())["n"] == 9


def counting_checkpoint_reads(monkeypatch):
    """Every checkpoint file read from disk in this process from now on, by path (``torch.load`` calls)."""
    from trainers.dpc import stage1

    monkeypatch.setattr(stage1, "_last_read", (None, None))  # nothing read before counts as read
    reads = []
    load = torch.load

    def counting_load(path, *args, **kwargs):
        reads.append(os.path.realpath(path))
        return load(path, *args, **kwargs)

    monkeypatch.setattr(torch, "load", counting_load)
    return reads


def test_a_training_reads_its_stage1_checkpoint_once_and_takes_an_integer_host_loss_weight(runs, monkeypatch):
    """``TRAINER.DPC.HOST_LOSS_WEIGHT 1`` (an integer for a float key, as the docs write it) trains; the stage-1
    checkpoint is read once although the config's resolution and the prompts' loading both need it."""
    reads = counting_checkpoint_reads(monkeypatch)
    trainer = dpc(runs["root"], runs["clip"], runs["tmp"] / "dpc_reads", "TRAINER.DPC.BACKBONE_DIR", runs["stage1"],
                  "OPTIM.MAX_EPOCH", 1, "TRAINER.DPC.HOST_LOSS_WEIGHT", 1)
    assert trainer.cfg.TRAINER.DPC.HOST_LOSS_WEIGHT == 1.0 and trainer.stage1_loaded
    stage1_file = os.path.realpath(runs["stage1"] / "prompt_learner" / "model.pth.tar-2")
    assert reads.count(stage1_file) == 1, reads


def test_an_evaluation_reads_its_checkpoint_once(runs, monkeypatch):
    reads = counting_checkpoint_reads(monkeypatch)
    load_dpc(runs, runs["tmp"] / "dpc_eval_reads", subsample="new")
    own = os.path.realpath(runs["stage2"] / "dual_prompts" / "model.pth.tar-2")
    assert reads.count(own) == 1, reads

"""Bad inputs and interruptions: no wrong result is ever counted as finished, and every bad input is named.

One test (or a few) per case of the reliability review, numbered as there. Exact resume with data workers
after kill -9 (case 6) is in ``test_runtimes.py``.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
from support.child_processes import assert_all_end
from support.paths import REPO_DIR
from support.records import finished_record
from support.runs import run_train, train_argv

from tools.pipeline.plan import Spec, build_plan
from tools.pipeline.run_state import unfinished_reason
from tools.pipeline.runner import DONE, RAN, execute, summarize
from tools.tables import cli as tables
from trainers.dpc.negative_pool import read_image_library
from trainers.engine.clip_trainer import ClipTrainer
from trainers.run.checkpoints import load_checkpoint
from trainers.run.config_keys import ConfigError
from trainers.run.lock import RunLockedError, run_lock
from trainers.run.record import load_record, write_results


def results(out):
    return json.loads((out / "results.json").read_text())


@pytest.fixture(scope="module")
def finished(tmp_path_factory, shapes12, coop_stage1, tiny_clip_path):
    """A finished CoOp run (a copy of the session's: seed 1, 2 epochs; tests here run into it) and a finished DPC
    run over it, on the 12-class shapes dataset."""
    tmp = tmp_path_factory.mktemp("faults")
    coop, dpc = tmp / "coop", tmp / "dpc"
    shutil.copytree(coop_stage1, coop)
    run_train(*dpc_args(shapes12, tiny_clip_path, dpc, "TRAINER.DPC.BACKBONE_DIR", coop))
    return {"root": shapes12, "clip": tiny_clip_path, "tmp": tmp, "coop": coop, "dpc": dpc}


def dpc_args(root, clip, out, *opts):
    return train_argv("DPC", root, clip, out, *opts, epochs=1, print_freq=None)


def interrupted_after_epoch(monkeypatch, epoch, args):
    """Run ``args`` and stop it right after epoch ``epoch`` was saved."""
    original = ClipTrainer.after_epoch

    def after_epoch_then_stop(self):
        original(self)
        if self.epoch + 1 == epoch:
            raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(ClipTrainer, "after_epoch", after_epoch_then_stop)
        with pytest.raises(KeyboardInterrupt):
            run_train(*args)


# ---- 1. a diverging run ------------------------------------------------------------------------------------


def test_1_a_diverged_prompt_is_never_saved_or_recorded(tmp_path, shapes_root, tiny_clip_path):
    out = tmp_path / "run"
    with pytest.raises(FloatingPointError, match="NaN or inf.*OPTIM.LR 3e\\+38"):
        run_train(*train_argv("CoOp", shapes_root, tiny_clip_path, out, "OPTIM.LR", 3e38))
    assert not (out / "results.json").exists()
    saved = [name for name in os.listdir(out / "prompt_learner") if name.startswith("model")] \
        if (out / "prompt_learner").exists() else []
    for name in saved:  # whatever was saved before the divergence is finite
        state = load_checkpoint(str(out / "prompt_learner" / name))["state_dict"]
        assert all(torch.isfinite(t).all() for t in state.values())


# ---- 2. resume of another run --------------------------------------------------------------------------------


@pytest.mark.parametrize("change", [("--seed", 2), ("DATASET.NUM_SHOTS", 2), ("TRAINER.COOP.N_CTX", 2)])
def test_2_a_finished_run_is_not_resumed_by_another_run(finished, change):
    before = results(finished["coop"])
    args = train_argv("CoOp", finished["root"], finished["clip"], finished["coop"])
    flag, value = change
    if flag == "--seed":
        args[args.index("--seed") + 1] = value
    else:
        args += [flag, value]
    with pytest.raises(ConfigError, match="belongs to another run"):
        run_train(*args)
    assert results(finished["coop"]) == before  # the finished record is untouched


def test_2_the_refusal_names_what_differs(finished):
    args = train_argv("CoOp", finished["root"], finished["clip"], finished["coop"], seed=2)
    with pytest.raises(ConfigError, match=r"seed: 1 there, 2 here"):
        run_train(*args)


def test_2_13_a_second_writer_of_one_run_directory_is_refused(tmp_path, shapes_root, tiny_clip_path):
    out = tmp_path / "run"
    with run_lock(str(out)):  # another process writing the run (flock: per open file, so this process too)
        with pytest.raises(RunLockedError, match=f"{out} is being written by another process"):
            run_train(*train_argv("CoOp", shapes_root, tiny_clip_path, out))
    assert not (out / "results.json").exists() and not (out / "prompt_learner").exists()


# ---- 3. the pipeline and what a finished run depends on ----------------------------------------------------


class FakeTrain:
    """Writes the record train.py would write (a fresh run id per run)."""

    def __init__(self):
        self.calls = []

    def __call__(self, run, output_file):
        from support.records import mark_finished

        self.calls.append(run.stage)
        mark_finished(run)
        return 0


def plan(tmp_path, *host_opts):
    (tmp_path / "good.yaml").write_text('DATASET:\n  NAME: "ImageFolder"\n  FOLDER: "good"\n')
    spec = Spec(host="CoOp", root=str(tmp_path), out=str(tmp_path / "out"), seeds=[1],
                datasets=[str(tmp_path / "good.yaml")], host_config="cpu_tiny", dpc_config="cpu_tiny",
                host_opts=list(host_opts))
    return build_plan(spec, warn=lambda m: None)


@pytest.mark.slow
def test_3_a_redone_host_makes_its_dependants_run_again(tmp_path):
    runs = plan(tmp_path)
    execute(runs, executor=FakeTrain(), progress=False, echo=lambda line: None)
    host_train = runs[0]
    os.remove(os.path.join(host_train.output_dir, "results.json"))  # the host is redone
    fake = FakeTrain()
    outcomes = execute(runs, executor=fake, progress=False, echo=lambda line: None)
    assert fake.calls == ["host-train", "host-test", "dpc-train", "dpc-test"]
    assert all(o.status == RAN for o in outcomes)
    summary = summarize(outcomes)
    assert "made from an earlier base2new/train_base/good" in summary and ".stale-" in summary


@pytest.mark.slow
def test_3_changed_options_are_not_taken_as_finished(tmp_path):
    execute(plan(tmp_path), executor=FakeTrain(), progress=False, echo=lambda line: None)
    again = execute(plan(tmp_path), executor=FakeTrain(), progress=False, echo=lambda line: None)
    assert all(o.status == DONE for o in again)
    changed = plan(tmp_path, "OPTIM.LR", 0.01)
    assert "config_hash" in unfinished_reason(changed[0])
    outcomes = execute(changed, executor=FakeTrain(), progress=False, echo=lambda line: None)
    assert [o.status for o in outcomes] == [RAN] * 4  # the host, and everything made from it
    assert "its results.json is of another run (config_hash" in summarize(outcomes)


# ---- 4. --eval-only into a training directory ----------------------------------------------------------------


def test_4_an_evaluation_never_replaces_a_training_record(finished):
    before = results(finished["coop"])
    args = train_argv("CoOp", finished["root"], finished["clip"], finished["coop"], subsample="new")
    with pytest.raises(ValueError, match="holds a training run"):
        run_train("--eval-only", "--model-dir", finished["coop"], "--load-epoch", 2, *args)
    assert results(finished["coop"]) == before


def test_4_a_table_leaves_out_a_record_of_the_wrong_classes(tmp_path, capsys):
    from tools import output_folders as layout

    for phase, subsample in (("train", "new"), ("test", "new")):  # a new-class result in the base folder
        directory = layout.run_dir(str(tmp_path), layout.BASE2NEW, phase, "caltech101", 16, "CoOp", "c", 1)
        write_results(directory, finished_record(50.0, "Caltech101", subsample=subsample))
    tables.main([str(tmp_path), "--paper", "none"])
    err = capsys.readouterr().err
    assert "train_base/caltech101" in err and "holds a run on the 'new' classes" in err


# ---- 5. results.json validation ------------------------------------------------------------------------------


@pytest.mark.parametrize("record, problem", [
    ({"accuracy": 99.0}, "lacks 'trainer'"),
    (finished_record("abc"), "accuracy is 'abc'"),
    (finished_record(float("nan")), "accuracy nan is not a percentage"),
    (finished_record(120.0), "accuracy 120.0 is not a percentage"),
    (finished_record(50.0, n=0), "n is 0"),
    ([1, 2], "does not hold a JSON object"),
])
def test_5_an_invalid_record_is_not_a_finished_run(tmp_path, record, problem):
    (tmp_path / "results.json").write_text(json.dumps(record))
    loaded, reason = load_record(str(tmp_path))
    assert loaded is None and reason.startswith(str(tmp_path / "results.json")) and problem in reason


def test_5_tables_name_an_unreadable_record_and_go_on(tmp_path, capsys):
    from tools import output_folders as layout

    good = {"train": 80.0, "test": 60.0}
    for seed in (1, 2):
        for phase, accuracy in good.items():
            directory = layout.run_dir(str(tmp_path), layout.BASE2NEW, phase, "caltech101", 16, "CoOp", "c", seed)
            os.makedirs(directory, exist_ok=True)
            record = finished_record(accuracy, "Caltech101", seed, "base" if phase == "train" else "new")
            if seed == 2 and phase == "test":
                (tmp_path / directory / "results.json").write_text('{"accuracy": "abc"')  # truncated
            else:
                write_results(directory, record)
    assert tables.main([str(tmp_path), "--paper", "none"]) == 0
    captured = capsys.readouterr()
    assert "test_new/caltech101/shots_16/CoOp/c/seed2/results.json is unreadable" in captured.err


# ---- 7. the checkpoint pointer file ---------------------------------------------------------------------------


def test_7_an_empty_pointer_file_falls_back_to_the_newest_checkpoint(tmp_path, shapes_root, tiny_clip_path,
                                                                      monkeypatch, capsys):
    out = tmp_path / "run"
    args = train_argv("CoOp", shapes_root, tiny_clip_path, out, epochs=3)
    interrupted_after_epoch(monkeypatch, 2, args)
    (out / "prompt_learner" / "checkpoint").write_text("")  # as left by a kill during a non-atomic rewrite
    capsys.readouterr()
    run_train(*args)
    assert "Previous epoch: 2" in capsys.readouterr().out
    assert results(out)["accuracy"] >= 0


# ---- 8. config errors before any output is touched ----------------------------------------------------------


def test_8_a_typo_in_a_dpc_key_leaves_the_finished_run_alone(finished):
    before = results(finished["dpc"])
    with pytest.raises(ValueError, match="TRAINER.DPC.NEGATIVE_POOL must be one of .* got 'trian'"):
        run_train(*dpc_args(finished["root"], finished["clip"], finished["dpc"], "TRAINER.DPC.BACKBONE_DIR",
                            finished["coop"], "TRAINER.DPC.NEGATIVE_POOL", "trian"))
    assert results(finished["dpc"]) == before


def test_12_max_epoch_zero_is_refused(tmp_path, shapes_root, tiny_clip_path):
    with pytest.raises(ConfigError, match="OPTIM.MAX_EPOCH is 0: nothing to train"):
        run_train(*train_argv("CoOp", shapes_root, tiny_clip_path, tmp_path / "run", epochs=0))
    assert not (tmp_path / "run" / "results.json").exists()


# ---- 9 and 10. data and file errors name the file ------------------------------------------------------------


def test_9_a_truncated_image_is_named(tmp_path, shapes_root, tiny_clip_path):
    folder = os.path.join(shapes_root, "shapes", "red_circle")
    victim = os.path.join(folder, sorted(os.listdir(folder))[0])
    with open(victim, "rb") as f:
        data = f.read()
    with open(victim, "wb") as f:
        f.write(data[: len(data) // 2])
    with pytest.raises(OSError, match=f"Cannot read the image {victim}"):
        run_train(*train_argv("CoOp", shapes_root, tiny_clip_path, tmp_path / "run", "DATASET.NUM_SHOTS", -1,
                              subsample="all"))


def test_9_the_image_folder_reader_takes_images_only(tmp_path, shapes_root, tiny_clip_path):
    folder = os.path.join(shapes_root, "shapes", "red_circle")
    open(os.path.join(folder, "Thumbs.db"), "w").close()
    open(os.path.join(folder, "notes.txt"), "w").close()
    os.makedirs(os.path.join(folder, "raw"))
    trainer = run_train(*train_argv("CoOp", shapes_root, tiny_clip_path, tmp_path / "run", epochs=1))
    listed = [d.impath for d in trainer.dm.dataset.test]
    assert listed and all(path.endswith(".png") for path in listed)


def library(tmp_path, content):
    path = tmp_path / "library.json"
    path.write_text(json.dumps(content))
    return str(path)


@pytest.mark.parametrize("content, message", [
    ({"red circle": "a.png"}, '"red circle" maps to a.png; expected a list of image paths'),
    ([["a.png", 0, "red circle"]], "holds a list, not an object: expected"),
    ({"train": [["a.png", 0]]}, 'entry 0 of "train" is'),
    ({"red circle": ["missing.png"]}, "missing on disk: .*missing.png.*listed in the image library"),
])
def test_9_a_bad_image_library_is_named_with_its_entry(tmp_path, content, message):
    path = library(tmp_path, content)
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        read_image_library(path, ["red circle", "green square"])


def test_9_a_bad_library_fails_before_dpc_trains(finished, tmp_path):
    path = library(tmp_path, {"blue_circle": ["missing.png"]})  # a base class
    out = tmp_path / "dpc"
    with pytest.raises(FileNotFoundError, match="missing.png"):
        run_train(*dpc_args(finished["root"], finished["clip"], out, "TRAINER.DPC.BACKBONE_DIR", finished["coop"],
                            "TRAINER.DPC.NEGATIVE_POOL", path))
    assert not (out / "dual_prompts").exists()


@pytest.mark.parametrize("content, message", [
    ("{not json", "is not valid JSON"),
    (json.dumps({"train": [["a.png", "zero", "red"]], "val": [], "test": []}), 'entry 0 of "train" is'),
])
def test_10_a_bad_split_file_is_named(tmp_path, shapes_root, tiny_clip_path, content, message):
    run_train("--no-train", *train_argv("CoOp", shapes_root, tiny_clip_path, tmp_path / "probe"))  # writes the split
    split = os.path.join(shapes_root, "shapes", "split_shapes.json")
    with open(split, "w") as f:
        f.write(content)
    with pytest.raises(ValueError, match=f"{split}.*{message}"):
        run_train(*train_argv("CoOp", shapes_root, tiny_clip_path, tmp_path / "run"))


@pytest.mark.parametrize("content", [b"this is not a torch file", None])
def test_10_unreadable_clip_weights_are_named(tmp_path, shapes_root, tiny_clip_path, content):
    weights = tmp_path / "clip.pt"
    if content is None:  # truncated
        with open(tiny_clip_path, "rb") as f:
            content = f.read()[:5000]
    weights.write_bytes(content)
    with pytest.raises(ValueError, match=f"CLIP weights {weights} cannot be read"):
        run_train(*train_argv("CoOp", shapes_root, str(weights), tmp_path / "run"))


def test_10_a_corrupt_resume_checkpoint_is_named(tmp_path, shapes_root, tiny_clip_path, monkeypatch):
    out = tmp_path / "run"
    args = train_argv("CoOp", shapes_root, tiny_clip_path, out, epochs=3)
    interrupted_after_epoch(monkeypatch, 2, args)
    checkpoint = out / "prompt_learner" / "model.pth.tar-2"
    checkpoint.write_bytes(checkpoint.read_bytes()[:100])
    with pytest.raises(ValueError, match=f"Checkpoint {checkpoint} cannot be read"):
        run_train(*args)


def test_10_a_full_disk_while_saving_is_named(tmp_path, shapes_root, tiny_clip_path, monkeypatch):
    def no_space(obj, path, *args, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:626] . unexpected pos 64 vs 0 (No space left)")

    monkeypatch.setattr(torch, "save", no_space)
    out = tmp_path / "run"
    with pytest.raises(OSError, match=f"Could not write the checkpoint {out}/prompt_learner/model.pth.tar-1"):
        run_train(*train_argv("CoOp", shapes_root, tiny_clip_path, out))
    assert not any(name.endswith(".tmp") for name in os.listdir(out / "prompt_learner"))


# ---- 11. one clear line -----------------------------------------------------------------------------------------


def train_py(*args, env=None):
    return subprocess.run([sys.executable, "train.py", *map(str, args)], cwd=REPO_DIR, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})


@pytest.mark.slow
def test_11_a_bad_key_is_two_lines_and_debug_shows_the_traceback(tmp_path, shapes_root, tiny_clip_path):
    args = train_argv("CoOp", shapes_root, tiny_clip_path, tmp_path / "run", "TRAINER.COOP.N_CTXX", 4)
    result = train_py(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr
    assert lines[-2].startswith("train.py: error: Command-line option: Non-existent key: TRAINER.COOP.N_CTXX")
    assert lines[-1].startswith("train.py: (rerun with --debug")
    assert "Traceback" in train_py("--debug", *args).stderr
    assert "Traceback" in train_py(*args, env={"DPC_DEBUG": "1"}).stderr


# ---- 12. silent cases are recorded --------------------------------------------------------------------------------


def test_12_fewer_images_than_shots_are_recorded(tmp_path, shapes_root, tiny_clip_path, capsys):
    out = tmp_path / "run"
    run_train(*train_argv("CoOp", shapes_root, tiny_clip_path, out, shots=8, epochs=1))  # 5 training images per class
    assert "DATASET.NUM_SHOTS is 8, but 3 of 3 classes have fewer training images" in capsys.readouterr().out
    record = results(out)
    assert record["num_shots"] == 8 and record["train_images_per_class"] == {"fewest": 5, "most": 5}


def test_12_an_evaluation_without_weights_says_so(tmp_path, shapes_root, tiny_clip_path, capsys):
    out = tmp_path / "eval"
    run_train("--eval-only", *train_argv("CoOp", shapes_root, tiny_clip_path, out, subsample="new"))
    assert "no weights were loaded" in capsys.readouterr().out
    record = results(out)
    assert record["untrained"] is True and record["evaluated"] is None and record["identity"]["eval_only"]


# ---- 13. the pipeline's children die with it ----------------------------------------------------------------------


@pytest.mark.slow
def test_13_a_killed_pipeline_leaves_no_child_running(tmp_path):
    """The pipeline process is killed with SIGKILL while its train.py child runs: the child is ended too."""
    fake_python = tmp_path / "python"
    pid_file = tmp_path / "child.pid"
    fake_python.write_text(f"#!/bin/sh\necho $$ > {pid_file}\nexec sleep 60\n")
    fake_python.chmod(0o755)
    (tmp_path / "good.yaml").write_text('DATASET:\n  NAME: "ImageFolder"\n  FOLDER: "good"\n')
    driver = f"""
import sys
sys.path.insert(0, {REPO_DIR!r}); sys.path.insert(0, {os.path.join(REPO_DIR, "tests")!r})
from tools.pipeline.plan import Spec, build_plan
from tools.pipeline.executors.processes import SerialExecutor
from tools.pipeline.runner import execute
runs = build_plan(Spec(host="CoOp", root={str(tmp_path)!r}, out={str(tmp_path / "out")!r}, seeds=[1],
                       datasets=[{str(tmp_path / "good.yaml")!r}], host_config="cpu_tiny", stages=("host-train",)),
                  warn=lambda m: None)
execute(runs, executor=SerialExecutor(python={str(fake_python)!r}), progress=False)
"""
    pipeline = subprocess.Popen([sys.executable, "-c", driver], cwd=REPO_DIR)
    deadline = time.time() + 60
    while not pid_file.exists() or not pid_file.read_text().strip():
        assert time.time() < deadline and pipeline.poll() is None, "the child never started"
        time.sleep(0.1)
    child = int(pid_file.read_text())
    pipeline.send_signal(signal.SIGKILL)
    pipeline.wait()
    assert_all_end([child], within=10, what="the pipeline's child")



def test_3_registering_another_trainer_leaves_every_run_identity_as_it_was(tmp_path):
    """A new host adds a config node: the runs of other trainers must not all look stale."""
    from tools.pipeline.run_state import expected_identity
    from trainers.engine.config import _EXTENSIONS, config_extension, new_node

    runs = plan(tmp_path)
    before = [expected_identity(run)["config_hash"] for run in runs]

    @config_extension
    def add_a_new_host(cfg):
        cfg.TRAINER.SOME_NEW_HOST = new_node(N_CTX=4)

    try:
        assert [expected_identity(run)["config_hash"] for run in plan(tmp_path)] == before  # configs built anew
    finally:
        _EXTENSIONS.remove(add_a_new_host)

"""What must hold under Dassl and the built-in runtime alike: a run killed mid-epoch resumes to the bit-identical
final prompt and learning-rate sequence; and, where Dassl is installed, checkpoints cross between the runtimes
and the demo gives the same numbers under both.

The suite runs once per runtime (``.ci/run``); the tests that compare the two need Dassl importable and start
the built-in runtime in a subprocess with ``DPC_RUNTIME=builtin``.
"""
import json
import os
import re
import subprocess
import sys

import pytest
import torch
from support.paths import REPO_DIR
from support.runs import run_train, train_argv

from datasets.toolbox import HAVE_DASSL

pytestmark = pytest.mark.slow  # every test here trains through train.py

needs_dassl = pytest.mark.skipif(not HAVE_DASSL, reason="compares with Dassl, which is not importable here")

# Runs train.py, killing its own process with SIGKILL before the step (epoch, batch) of the trainer named first:
# a real kill mid-epoch, at a chosen point, with no chance to clean up.
KILL_AT_STEP = """
import os, signal, sys
import train
from trainers.engine import TRAINER_REGISTRY
trainer_cls = TRAINER_REGISTRY.get(sys.argv[1])
epoch, batch = int(sys.argv[2]), int(sys.argv[3])
step = trainer_cls.forward_backward
def forward_backward(self, data):
    if (self.epoch, self.batch_idx) == (epoch, batch):
        os.kill(os.getpid(), signal.SIGKILL)
    return step(self, data)
trainer_cls.forward_backward = forward_backward
train.main(train.build_parser().parse_args(sys.argv[4:]))
"""


def python(args, runtime=None, check=True):
    """A fresh interpreter in the repository; ``runtime="builtin"`` forces the built-in runtime."""
    env = {k: v for k, v in os.environ.items() if k != "DPC_RUNTIME"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO_DIR, env.get("PYTHONPATH")) if p)
    env["OMP_NUM_THREADS"] = "1"
    if runtime:
        env["DPC_RUNTIME"] = runtime
    result = subprocess.run([sys.executable, *map(str, args)], cwd=REPO_DIR, env=env, capture_output=True,
                            text=True, timeout=300)
    if check:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def train_args(trainer, root, clip, out, *opts):
    """A run whose final prompt depends on every epoch (a large learning rate) and that logs every step's LR."""
    return train_argv(trainer, root, clip, out, "OPTIM.LR", 0.05, *opts, epochs=4, print_freq=1)


def final_state(out, model_name, epoch=4):
    return torch.load(os.path.join(out, model_name, f"model.pth.tar-{epoch}"), weights_only=True)["state_dict"]


def logged_lrs(log):
    """(epoch, batch) -> learning rate, from the training lines."""
    return {(int(e), int(b)): float(lr) for e, b, lr in
            re.findall(r"epoch \[(\d+)/\d+\] batch \[(\d+)/\d+\].* lr (\S+)", log)}


@pytest.fixture(scope="module")
def world(tmp_path_factory, shapes12, coop_stage1, tiny_clip_path):
    """12 shape classes (6 base), and the session's CoOp stage-1 run for DPC to wrap."""
    return {"root": shapes12, "clip": tiny_clip_path, "tmp": tmp_path_factory.mktemp("runtimes"),
            "stage1": coop_stage1}


@pytest.mark.slow
@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("trainer, model_name", [("CoOp", "prompt_learner"), ("DPC", "dual_prompts")])
def test_a_run_killed_mid_epoch_resumes_to_the_bit_identical_prompt(world, trainer, model_name, workers):
    """Killed with SIGKILL during epoch 3 of 4 (after its first step), then the same command again; with data
    workers too (random augmentations in the workers, negative images of DPC loaded by its own workers)."""
    opts = ("DATALOADER.NUM_WORKERS", workers)
    opts += ("TRAINER.DPC.BACKBONE_DIR", world["stage1"]) if trainer == "DPC" else ()
    reference = world["tmp"] / f"{trainer}_{workers}_uninterrupted"
    killed = world["tmp"] / f"{trainer}_{workers}_killed"
    uninterrupted = python(["train.py", *train_args(trainer, world["root"], world["clip"], reference, *opts)])

    dead = python(["-c", KILL_AT_STEP, trainer, 2, 1, *train_args(trainer, world["root"], world["clip"], killed,
                                                                  *opts)], check=False)
    assert dead.returncode == -9, dead.stderr[-2000:]
    assert not (killed / "results.json").exists()
    assert os.path.exists(killed / model_name / "model.pth.tar-2")

    resumed = python(["train.py", *train_args(trainer, world["root"], world["clip"], killed, *opts)])
    assert "Previous epoch: 2" in resumed.stdout and "epoch [1/4]" not in resumed.stdout
    expected, got = final_state(reference, model_name), final_state(killed, model_name)
    assert list(expected) == list(got)
    for name in expected:
        assert torch.equal(expected[name], got[name]), name
    # the learning rates of epochs 3 and 4 (warm-up, then cosine) are those of the uninterrupted run
    reference_lrs, resumed_lrs = logged_lrs(uninterrupted.stdout), logged_lrs(resumed.stdout)
    assert resumed_lrs and set(resumed_lrs) == {key for key in reference_lrs if key[0] >= 3}
    assert all(resumed_lrs[key] == reference_lrs[key] for key in resumed_lrs)
    accuracy = [json.loads((out / "results.json").read_text())["accuracy"] for out in (reference, killed)]
    assert accuracy[0] == accuracy[1]


@needs_dassl
def test_checkpoints_cross_between_the_runtimes(world):
    """Stage 1 written by the built-in runtime is wrapped by DPC under Dassl; that DPC run, written under Dassl,
    evaluates under the built-in runtime to the accuracy Dassl recorded."""
    stage1 = world["tmp"] / "builtin_stage1"
    python(["train.py", *train_args("CoOp", world["root"], world["clip"], stage1, "OPTIM.MAX_EPOCH", 2)],
           runtime="builtin")
    stage2 = world["tmp"] / "dassl_stage2"
    run_train(*train_args("DPC", world["root"], world["clip"], stage2, "OPTIM.MAX_EPOCH", 2,
                          "TRAINER.DPC.BACKBONE_DIR", stage1))
    dassl_accuracy = json.loads((stage2 / "results.json").read_text())["accuracy"]

    evaluated = world["tmp"] / "builtin_eval"
    result = python(["train.py", "--eval-only", "--model-dir", stage2, "--load-epoch", 2,
                     *train_args("DPC", world["root"], world["clip"], evaluated)], runtime="builtin")
    assert "Toolbox runtime: built-in" in result.stdout
    assert json.loads((evaluated / "results.json").read_text())["accuracy"] == dassl_accuracy


def results_by_run(out):
    """Run directory (relative to ``out``) -> (accuracy, macro-F1, test images) of its results.json."""
    found = {}
    for folder, _, files in os.walk(out):
        if "results.json" in files:
            with open(os.path.join(folder, "results.json")) as f:
                record = json.load(f)
            found[os.path.relpath(folder, out)] = (record["accuracy"], record["macro_f1"], record["n"])
    return found


@needs_dassl
def test_the_demo_gives_the_same_numbers_under_both_runtimes(tmp_path):
    """``python -m tools.demo --seeds 1``: zero-shot, CoOp and CoOp+DPC, base and new, in both runtimes."""
    root = tmp_path / "data"
    outputs = {}
    for runtime in ("builtin", None):
        outputs[runtime] = tmp_path / (runtime or "dassl")
        result = python(["-m", "tools.demo", "--seeds", 1, "--root", root, "--out", outputs[runtime]], runtime)
        assert "6 ran, 0 already finished" in result.stdout, result.stdout
    builtin, dassl = results_by_run(outputs["builtin"]), results_by_run(outputs[None])
    assert len(builtin) == 6 and builtin == dassl

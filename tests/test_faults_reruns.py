"""Same command, same numbers: a run repeated into a fresh folder gives the bit-identical final prompt and the same
results.json numbers on the CPU, for every host, DPC and the pipeline; ``DETERMINISTIC True`` (for CUDA) changes
no CPU number (docs/RELIABILITY.md)."""
import json
import os

import pytest
import torch
from support.hosts import HOSTS
from support.runs import run_train, train_argv
from support.small_pipeline import prompts_by_run, results_by_run

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("promptkd_teacher")]  # HOSTS include PromptKD

RECORDED_NUMBERS = ("accuracy", "macro_f1", "error_rate", "n")


def numbers(out):
    with open(os.path.join(out, "results.json")) as f:
        record = json.load(f)
    return {key: record[key] for key in RECORDED_NUMBERS}


def checkpoints(out):
    """Checkpoint file (relative to the run) -> its learned tensors."""
    from trainers.run.checkpoints import load_checkpoint

    found = {}
    for folder, _, names in os.walk(out):
        for name in sorted(n for n in names if n.startswith("model")):
            found[os.path.relpath(os.path.join(folder, name), out)] = load_checkpoint(
                os.path.join(folder, name))["state_dict"]
    return found


def assert_same_tensors(first, second):
    assert list(first) == list(second) and first
    for key in first:
        assert list(first[key]) == list(second[key]), key
        for name in first[key]:
            assert torch.equal(first[key][name], second[key][name]), (key, name)


def assert_same_run(first, second):
    assert_same_tensors(checkpoints(first), checkpoints(second))
    assert numbers(first) == numbers(second)


@pytest.fixture(scope="module")
def world(tmp_path_factory, shapes12, tiny_clip_path):
    """The session's 12-class shapes data, the tiny CLIP, and a folder for this module's runs."""
    return {"root": shapes12, "clip": tiny_clip_path, "tmp": tmp_path_factory.mktemp("reruns")}


@pytest.mark.parametrize("host", HOSTS)
def test_4_a_host_run_repeated_into_a_fresh_folder_gives_the_same_bits(world, host):
    outs = [world["tmp"] / f"{host}_{i}" for i in (1, 2)]
    for out in outs:
        run_train(*train_argv(host, world["root"], world["clip"], out, "OPTIM.LR", 0.05))
    assert_same_run(*outs)


def test_4_a_dpc_run_repeated_into_a_fresh_folder_gives_the_same_bits(world, coop_stage1):
    outs = [world["tmp"] / f"dpc_{i}" for i in (1, 2)]
    for out in outs:
        run_train(*train_argv("DPC", world["root"], world["clip"], out, "TRAINER.DPC.BACKBONE_DIR", coop_stage1,
                              print_freq=None))
    assert_same_run(*outs)


@pytest.mark.slow
def test_4_the_pipeline_repeated_into_a_fresh_folder_gives_the_same_bits(tmp_path, tiny_clip_path):
    """Host training, host test, DPC training and DPC test of one dataset and seed, twice, through the pipeline's
    plan and runner (in this process, as the demo runs them)."""
    from support.small_pipeline import make_two_datasets, tiny_opts

    from tools.pipeline.executors.inline import InProcessExecutor
    from tools.pipeline.plan import Spec, build_plan
    from tools.pipeline.runner import execute

    root, yamls = make_two_datasets(str(tmp_path))
    outs = [tmp_path / f"out_{i}" for i in (1, 2)]
    for out in outs:
        spec = Spec(host="CoOp", root=root, out=str(out), seeds=[1], datasets=yamls[:1], shots=[2],
                    host_config="cpu_tiny", dpc_config="cpu_tiny", opts=tiny_opts(tiny_clip_path, epochs=2))
        execute(build_plan(spec, warn=lambda m: None), executor=InProcessExecutor(), progress=False,
                echo=lambda line: None)
    first, second = results_by_run(outs[0]), results_by_run(outs[1])
    assert len(first) == 4 and first == second
    assert_same_tensors(prompts_by_run(outs[0]), prompts_by_run(outs[1]))


def test_4_deterministic_changes_no_cpu_number_and_is_put_back_after_the_run(world, monkeypatch):
    seen = []
    original = torch.Tensor.backward

    def backward(self, *args, **kwargs):
        seen.append((torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.deterministic))
        return original(self, *args, **kwargs)

    plain, deterministic = world["tmp"] / "plain", world["tmp"] / "deterministic"
    run_train(*train_argv("CoOp", world["root"], world["clip"], plain, "OPTIM.LR", 0.05))
    with monkeypatch.context() as patch:
        patch.setattr(torch.Tensor, "backward", backward)
        run_train(*train_argv("CoOp", world["root"], world["clip"], deterministic, "OPTIM.LR", 0.05,
                              "DETERMINISTIC", True))
    assert seen and all(flags == (True, True) for flags in seen)
    assert not torch.are_deterministic_algorithms_enabled() and not torch.backends.cudnn.deterministic
    assert_same_run(plain, deterministic)
    with open(deterministic / "results.json") as f:
        record = json.load(f)
    assert record["config"]["DETERMINISTIC"] is True
    with open(plain / "results.json") as f:
        assert json.load(f)["identity"]["config_hash"] == record["identity"]["config_hash"]

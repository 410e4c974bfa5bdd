"""Same command, same numbers: a run repeated into a fresh folder gives the bit-identical final prompt and the same
results.json numbers on the CPU, for every host, DPC and the pipeline; ``DETERMINISTIC True`` (for CUDA) changes
no CPU number (docs/RELIABILITY.md)."""
import json
import os

import pytest
import torch
from conftest import coop_args, run_train
from hosts_support import HOSTS, host_args
from small_pipeline import prompts_by_run, results_by_run

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
def shapes12(tmp_path_factory, tiny_clip_path):
    from datasets.shapes import make_shapes_dataset

    tmp = tmp_path_factory.mktemp("reruns")
    root = str(tmp / "data")
    make_shapes_dataset(root, colours=("red", "green", "blue", "yellow"), shapes=("circle", "square", "triangle"))
    return {"root": root, "clip": tiny_clip_path, "tmp": tmp}


@pytest.mark.parametrize("host", HOSTS)
def test_4_a_host_run_repeated_into_a_fresh_folder_gives_the_same_bits(shapes12, host):
    outs = [shapes12["tmp"] / f"{host}_{i}" for i in (1, 2)]
    for out in outs:
        run_train(*host_args(host, shapes12["root"], shapes12["clip"], out, "OPTIM.LR", 0.05))
    assert_same_run(*outs)


def test_4_a_dpc_run_repeated_into_a_fresh_folder_gives_the_same_bits(shapes12):
    stage1 = shapes12["tmp"] / "stage1"
    run_train(*coop_args(shapes12["root"], shapes12["clip"], stage1))
    outs = [shapes12["tmp"] / f"dpc_{i}" for i in (1, 2)]
    for out in outs:
        run_train("--root", shapes12["root"], "--seed", 1, "--trainer", "DPC", "--dataset-config-file",
                  "configs/datasets/shapes.yaml", "--config-file", "configs/trainers/DPC/cpu_tiny.yaml",
                  "--output-dir", out, "MODEL.BACKBONE.NAME", shapes12["clip"], "DATASET.NUM_SHOTS", 4,
                  "DATASET.SUBSAMPLE_CLASSES", "base", "OPTIM.MAX_EPOCH", 2, "TRAINER.DPC.BACKBONE_DIR", stage1)
    assert_same_run(*outs)


def test_4_the_pipeline_repeated_into_a_fresh_folder_gives_the_same_bits(tmp_path, tiny_clip_path):
    """Host training, host test, DPC training and DPC test of one dataset and seed, twice, through the pipeline's
    plan and runner (in this process, as the demo runs them)."""
    from small_pipeline import make_two_datasets, tiny_opts

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


def test_4_deterministic_changes_no_cpu_number_and_is_put_back_after_the_run(shapes12, monkeypatch):
    seen = []
    original = torch.Tensor.backward

    def backward(self, *args, **kwargs):
        seen.append((torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.deterministic))
        return original(self, *args, **kwargs)

    plain, deterministic = shapes12["tmp"] / "plain", shapes12["tmp"] / "deterministic"
    run_train(*coop_args(shapes12["root"], shapes12["clip"], plain, "OPTIM.LR", 0.05))
    with monkeypatch.context() as patch:
        patch.setattr(torch.Tensor, "backward", backward)
        run_train(*coop_args(shapes12["root"], shapes12["clip"], deterministic, "OPTIM.LR", 0.05,
                             "DETERMINISTIC", True))
    assert seen and all(flags == (True, True) for flags in seen)
    assert not torch.are_deterministic_algorithms_enabled() and not torch.backends.cudnn.deterministic
    assert_same_run(plain, deterministic)
    with open(deterministic / "results.json") as f:
        record = json.load(f)
    assert record["config"]["DETERMINISTIC"] is True
    with open(plain / "results.json") as f:
        assert json.load(f)["identity"]["config_hash"] == record["identity"]["config_hash"]

"""Shared fixtures: a tiny random CLIP on disk, a generated shapes dataset, and in-process ``train.py`` runs."""
import os
import sys

import pytest
import torch

import train
from datasets.shapes import make_shapes_dataset
from datasets.toolbox import RUNTIME_NAME, runtime_location
from trainers.prompted_clip import save_tiny_clip
from trainers.run.console_log import Tee

REPO_CONFIGS = "configs"
SHAPES_YAML = "configs/datasets/shapes.yaml"
COOP_CPU_YAML = "configs/trainers/CoOp/cpu_tiny.yaml"

# The tests run tiny models: one intra-op thread is as fast as two on an idle CPU and several times faster
# on a shared, busy one (threads otherwise spin waiting for each other).
torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")  # and the train.py runs made in this process (trainers/run/threads.py)


def pytest_report_header(config):
    return f"toolbox runtime: {RUNTIME_NAME} ({runtime_location()})"


@pytest.fixture(scope="session")
def tiny_clip_path(tmp_path_factory):
    """A randomly initialised ViT CLIP (width 64, 2 layers, 32 px) saved as a plain state dict."""
    return str(save_tiny_clip(str(tmp_path_factory.mktemp("clip") / "tiny_clip.pt")))


@pytest.fixture(scope="session", autouse=True)
def promptkd_teacher(tmp_path_factory):
    """PromptKD's teacher (a PromptSRC run on a tiny CLIP wider than the student's), and the PromptKD CPU config
    that names it, which every host test then uses for PromptKD. A dict: ``clip``, ``run``, ``yaml``."""
    from hosts_support import CPU_CONFIGS
    from promptkd_support import make_teacher, write_promptkd_yaml

    folder = tmp_path_factory.mktemp("promptkd_teacher")
    clip_path, run = make_teacher(str(folder))
    yaml = write_promptkd_yaml(str(folder / "cpu_tiny.yaml"), clip_path, run)
    CPU_CONFIGS["PromptKD"] = yaml
    yield {"clip": clip_path, "run": run, "yaml": yaml}
    CPU_CONFIGS.pop("PromptKD", None)


@pytest.fixture(scope="session")
def serial_reference(tmp_path_factory, tiny_clip_path):
    """The small pipeline (tests/small_pipeline.py: 2 datasets x 2 seeds, host and DPC) run by the default serial
    executor: the outputs every other executor must reproduce. A dict: data ``root``, dataset ``yamls``, ``out``."""
    from small_pipeline import make_two_datasets, pipeline_argv

    from tools.pipeline import cli as pipeline

    folder = tmp_path_factory.mktemp("serial_reference")
    root, yamls = make_two_datasets(str(folder))
    out = folder / "out"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OMP_NUM_THREADS", "1")  # tiny models: one thread per child is fastest on a shared CPU
        assert pipeline.main(pipeline_argv(root, yamls, out, tiny_clip_path) + ["--executor", "serial"]) == 0
    return {"root": root, "yamls": yamls, "out": out}


@pytest.fixture
def shapes_root(tmp_path):
    """A fresh data root holding ``shapes/``: 6 classes (3 colours x 2 shapes), 10 images each."""
    root = tmp_path / "data"
    make_shapes_dataset(str(root))
    return str(root)


@pytest.fixture(autouse=True)
def restore_std_streams():
    """``setup_logger`` tees stdout/stderr into log files (also from module-scoped fixtures): unwrap the tees
    after each test so that no later test writes through a closed log file."""
    yield
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        while isinstance(stream, Tee):
            stream.close()
            stream = stream.stream
        setattr(sys, name, stream)


def run_train(*argv):
    """Run ``python train.py ARGV`` in this process and return the trainer."""
    return train.main(train.build_parser().parse_args([str(a) for a in argv]))


class Interrupted(Exception):
    """What ``run_train_interrupted`` raises to stop a run between two epochs."""


def run_train_interrupted(after_epoch, *argv):
    """``run_train(*argv)`` stopped by an exception right after epoch ``after_epoch`` (1-based) is saved, as a
    crash between epochs would stop it."""
    from trainers.engine.clip_trainer import ClipTrainer

    original_after_epoch = ClipTrainer.after_epoch

    def after_epoch_then_crash(self):
        original_after_epoch(self)
        if self.epoch + 1 == after_epoch:
            raise Interrupted()

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ClipTrainer, "after_epoch", after_epoch_then_crash)
        with pytest.raises(Interrupted):
            run_train(*argv)


def coop_args(root, clip_path, output_dir, *opts, seed=1, epochs=2, subsample="base", shots=4):
    """The anchors' CoOp command line on the shapes dataset with the tiny CLIP."""
    return [
        "--root", root, "--seed", seed, "--trainer", "CoOp",
        "--dataset-config-file", SHAPES_YAML, "--config-file", COOP_CPU_YAML, "--output-dir", output_dir,
        "MODEL.BACKBONE.NAME", clip_path, "OPTIM.MAX_EPOCH", epochs,
        "DATASET.NUM_SHOTS", shots, "DATASET.SUBSAMPLE_CLASSES", subsample, "TRAIN.PRINT_FREQ", 100, *opts,
    ]


@pytest.fixture(scope="session")
def tuned_runs(tmp_path_factory, tiny_clip_path):
    """Finished runs to use (tools.predict, tools.export, tools.interpret): CoOp on the base classes of a 12-class
    shapes dataset (6 base, 6 new; 2 epochs) and DPC over it (1 epoch). A dict: ``root``, ``clip``, ``coop``,
    ``dpc``, ``tmp``, and the ``args`` that evaluate a run (``args(trainer, out, subsample, *flags)``)."""
    from datasets.shapes import make_shapes_dataset

    tmp = tmp_path_factory.mktemp("tuned_runs")
    root = str(tmp / "data")
    make_shapes_dataset(root, colours=("red", "green", "blue", "yellow"), shapes=("circle", "square", "triangle"))

    def args(trainer, out, subsample, *flags):
        config = "configs/trainers/DPC/cpu_tiny.yaml" if trainer == "DPC" else COOP_CPU_YAML  # CoOp, zero-shot
        return ["--root", root, "--seed", 1, "--trainer", trainer, "--config-file", config,
                "--dataset-config-file", SHAPES_YAML, "--output-dir", out, *flags, "MODEL.BACKBONE.NAME",
                tiny_clip_path, "DATASET.NUM_SHOTS", 4, "DATASET.SUBSAMPLE_CLASSES", subsample]

    coop, dpc = tmp / "coop", tmp / "dpc"
    run_train(*args("CoOp", coop, "base"), "OPTIM.MAX_EPOCH", 2)
    run_train(*args("DPC", dpc, "base"), "OPTIM.MAX_EPOCH", 1, "TRAINER.DPC.BACKBONE_DIR", coop)
    return {"root": root, "clip": tiny_clip_path, "coop": str(coop), "dpc": str(dpc), "tmp": tmp, "args": args}

"""The tests' shared worlds, built once per session and only for the tests that ask for them: a tiny random CLIP
on disk, the shapes datasets, CoOp's stage 1 on twelve classes, PromptKD's teacher, the serial pipeline reference.

Session worlds are read-only for the tests: a test that changes one (reruns into it, corrupts a file) copies it
first. Helpers that are not fixtures live in ``tests/support/``."""
import os
import sys

import pytest
import torch
from support.runs import COOP_CPU_YAML, SHAPES_YAML, run_train, train_argv

from datasets.shapes import make_shapes_dataset
from datasets.toolbox import RUNTIME_NAME, runtime_location
from trainers.prompted_clip import save_tiny_clip
from trainers.run.console_log import Tee

TWELVE_SHAPES = dict(colours=("red", "green", "blue", "yellow"), shapes=("circle", "square", "triangle"))

# The tests run tiny models: one intra-op thread is as fast as two on an idle CPU and several times faster
# on a shared, busy one (threads otherwise spin waiting for each other).
torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")  # and the train.py runs made in this process (trainers/run/threads.py)


# Session worlds that train for real: a test that asks for one, itself or through another fixture, is slow.
TRAINED_WORLDS = {"coop_stage1", "serial_reference"}


def pytest_report_header(config):
    return f"toolbox runtime: {RUNTIME_NAME} ({runtime_location()})"


def pytest_collection_modifyitems(items):
    for item in items:
        if TRAINED_WORLDS & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def tiny_clip_path(tmp_path_factory):
    """A randomly initialised ViT CLIP (width 64, 2 layers, 32 px) saved as a plain state dict."""
    return str(save_tiny_clip(str(tmp_path_factory.mktemp("clip") / "tiny_clip.pt")))


@pytest.fixture(scope="session")
def shapes12(tmp_path_factory):
    """A data root holding ``shapes/`` with 12 classes (4 colours x 3 shapes: 6 base, 6 new, so that DPC finds
    negatives outside a batch of 4), 10 images each. Read-only (runs add their split and few-shot caches)."""
    root = tmp_path_factory.mktemp("shapes12") / "data"
    make_shapes_dataset(str(root), **TWELVE_SHAPES)
    return str(root)


@pytest.fixture(scope="session")
def coop_stage1(tmp_path_factory, shapes12, tiny_clip_path):
    """CoOp trained on ``shapes12``'s base classes (seed 1, 4 shots, 2 epochs): the stage 1 the DPC tests build
    on. The run directory; read-only (a test that writes into it works on a copy)."""
    run = tmp_path_factory.mktemp("coop_stage1") / "coop"
    run_train(*train_argv("CoOp", shapes12, tiny_clip_path, run))
    return run


@pytest.fixture(scope="session")
def promptkd_teacher(tmp_path_factory):
    """PromptKD's teacher (a PromptSRC run on a tiny CLIP wider than the student's), and the PromptKD CPU config
    that names it, which the host tests then use for PromptKD. A dict: ``clip``, ``run``, ``yaml``. Built only
    for a module that asks for it (``pytestmark = pytest.mark.usefixtures("promptkd_teacher")``)."""
    from support.hosts import CPU_CONFIGS
    from support.promptkd import make_teacher, write_promptkd_yaml

    folder = tmp_path_factory.mktemp("promptkd_teacher")
    clip_path, run = make_teacher(str(folder))
    yaml = write_promptkd_yaml(str(folder / "cpu_tiny.yaml"), clip_path, run)
    CPU_CONFIGS["PromptKD"] = yaml
    yield {"clip": clip_path, "run": run, "yaml": yaml}
    CPU_CONFIGS.pop("PromptKD", None)


def skipped_at_collection(item):
    """Whether a ``skipif`` mark with a plain boolean condition skips ``item`` (as the Slurm tests' marks do)."""
    return any(mark.args and mark.args[0] is True or mark.kwargs.get("condition") is True
               for mark in item.iter_markers("skipif"))


def reference_seeds(session):
    """The seeds that the collected, not skipped, tests using ``serial_reference`` compare, in order."""
    seeds = set()
    for item in session.items:
        if "serial_reference" in getattr(item, "fixturenames", ()) and not skipped_at_collection(item):
            for mark in item.iter_markers("reference_seeds"):
                seeds.update(mark.args)
    return tuple(sorted(seeds))


@pytest.fixture(scope="session")
def serial_reference(request, tmp_path_factory, tiny_clip_path):
    """The small pipeline (tests/support/small_pipeline.py: 2 datasets, host and DPC, 8 runs a seed) run by the
    default serial executor: the outputs every other executor must reproduce. Only the seeds that the collected
    tests compare (their ``reference_seeds`` marks) are run: seed 1 for the local executor, seeds 1 and 2 when the
    Slurm test runs too. A dict: data ``root``, dataset ``yamls``, ``out``, ``seeds``."""
    from support.small_pipeline import make_two_datasets, pipeline_argv

    from tools.pipeline import cli as pipeline

    seeds = reference_seeds(request.session)
    assert seeds, "serial_reference: the test that asks for it names the seeds it compares (@reference_seeds)"
    folder = tmp_path_factory.mktemp("serial_reference")
    root, yamls = make_two_datasets(str(folder))
    out = folder / "out"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OMP_NUM_THREADS", "1")  # tiny models: one thread per child is fastest on a shared CPU
        argv = pipeline_argv(root, yamls, out, tiny_clip_path, seeds=seeds) + ["--executor", "serial"]
        assert pipeline.main(argv) == 0
    return {"root": root, "yamls": yamls, "out": out, "seeds": seeds}


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


@pytest.fixture(scope="session")
def tuned_runs(tmp_path_factory, shapes12, coop_stage1, tiny_clip_path):
    """Finished runs to use (tools.predict, tools.export, tools.interpret): the session's CoOp stage 1 on
    ``shapes12``'s base classes and DPC over it (1 epoch). A dict: ``root``, ``clip``, ``coop``, ``dpc``, ``tmp``,
    and the ``args`` that evaluate a run (``args(trainer, out, subsample, *flags)``). Read-only, as the worlds."""
    tmp = tmp_path_factory.mktemp("tuned_runs")

    def args(trainer, out, subsample, *flags):
        config = "configs/trainers/DPC/cpu_tiny.yaml" if trainer == "DPC" else COOP_CPU_YAML  # CoOp, zero-shot
        return ["--root", shapes12, "--seed", 1, "--trainer", trainer, "--config-file", config,
                "--dataset-config-file", SHAPES_YAML, "--output-dir", out, *flags, "MODEL.BACKBONE.NAME",
                tiny_clip_path, "DATASET.NUM_SHOTS", 4, "DATASET.SUBSAMPLE_CLASSES", subsample]

    dpc = tmp / "dpc"
    run_train(*args("DPC", dpc, "base"), "OPTIM.MAX_EPOCH", 1, "TRAINER.DPC.BACKBONE_DIR", coop_stage1)
    return {"root": shapes12, "clip": tiny_clip_path, "coop": str(coop_stage1), "dpc": str(dpc), "tmp": tmp,
            "args": args}

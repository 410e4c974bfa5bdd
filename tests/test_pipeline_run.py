"""The pipeline on generated data with the tiny CLIP: real train.py runs, skip-and-resume, failures, tables.

Two generated datasets (two folders in the ImageFolder layout, each with its own dataset yaml written here),
one seed, one epoch per stage. One test runs train.py as subprocesses, as the pipeline does for users; the
DPC test runs train.py in this process (the same ``main``) to stay fast.
"""
import os
import sys
import traceback

import pytest
from support.runs import run_train
from support.small_pipeline import make_two_datasets, tiny_opts

from tools import output_folders as layout
from tools.pipeline import cli as pipeline
from tools.pipeline.plan import Spec, build_plan
from tools.pipeline.runner import DONE, RAN, execute
from tools.tables.report import build_report
from trainers.engine import TRAINER_REGISTRY
from trainers.run.record import read_results

HAS_DPC = "DPC" in TRAINER_REGISTRY.registered_names()


@pytest.fixture
def two_datasets(tmp_path):
    """DATA holding ``shapes_a`` (3 colours x 2 shapes) and ``shapes_b`` (2 x 3), and a yaml for each."""
    return make_two_datasets(str(tmp_path))


def results_mtimes(out):
    found = {}
    for directory, _, files in os.walk(out):
        if "results.json" in files:
            path = os.path.join(directory, "results.json")
            found[os.path.relpath(directory, out)] = os.stat(path).st_mtime_ns
    return found


class InProcessTrain:
    """The pipeline's executor, with ``train.main`` called in this process instead of a subprocess."""

    def __init__(self):
        self.calls = []

    def __call__(self, run, output_file):
        self.calls.append(run.key)
        saved = sys.stdout, sys.stderr
        with open(output_file, "a") as out:
            sys.stdout = sys.stderr = out
            try:
                run_train(*run.argv)
                status = 0
            except Exception:  # noqa: BLE001  (a failed run is reported, as a subprocess's exit status is)
                traceback.print_exc(file=out)
                status = 1
            finally:
                for stream in {id(sys.stdout): sys.stdout, id(sys.stderr): sys.stderr}.values():
                    if stream is not out:
                        stream.close()  # the log.txt tees train.py opened
                sys.stdout, sys.stderr = saved
        return status


@pytest.mark.slow
def test_host_stages_as_subprocesses_with_a_failing_dataset(tmp_path, two_datasets, tiny_clip_path, capsys,
                                                           monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # tiny models: one thread is faster on a shared CPU
    root, (yaml_a, _) = two_datasets
    missing = tmp_path / "missing.yaml"
    missing.write_text('DATASET:\n  NAME: "ImageFolder"\n  FOLDER: "not_generated"\n')
    out = tmp_path / "out"
    argv = ["--host", "CoOp", "--root", root, "--out", str(out), "--datasets", yaml_a, str(missing),
            "--seeds", "1", "--shots", "2", "--host-config", "cpu_tiny", "--stages", "host-train", "host-test",
            "--opts", *tiny_opts(tiny_clip_path), "--no-progress"]
    assert pipeline.main(argv) == 1
    printed = capsys.readouterr().out
    assert "4 runs: 2 ran, 0 already finished (skipped), 1 failed, 1 blocked" in printed
    failed_dir = out / "base2new/train_base/missing/shots_2/CoOp/cpu_tiny/seed1"
    assert f"failed: base2new/train_base/missing/shots_2/CoOp/cpu_tiny/seed1: exit status 2; see " \
           f"{failed_dir}/pipeline_output.txt" in printed
    output = (failed_dir / "pipeline_output.txt").read_text()
    assert "train.py: error: " in output and "not_generated" in output and "Traceback" not in output
    assert "blocked: base2new/test_new/missing/shots_2/CoOp/cpu_tiny/seed1: needs" in printed

    train = read_results(out / "base2new/train_base/shapes_a/shots_2/CoOp/cpu_tiny/seed1")
    test = read_results(out / "base2new/test_new/shapes_a/shots_2/CoOp/cpu_tiny/seed1")
    assert train["subsample_classes"] == "base" and train["n"] == 3 * 2  # 3 base classes, 2 test images each
    assert test["subsample_classes"] == "new" and test["n"] == 3 * 2
    # the table printed at the end comes from those two files
    assert "| shapes_a" in printed

    before = results_mtimes(out)
    assert pipeline.main(argv + ["--no-table"]) == 1
    assert "4 runs: 0 ran, 2 already finished (skipped), 1 failed, 1 blocked" in capsys.readouterr().out
    assert results_mtimes(out) == before


@pytest.mark.skipif(not HAS_DPC, reason="the DPC trainer is not registered (trainers/dpc)")
def test_full_pipeline_with_dpc_skips_and_resumes(tmp_path, two_datasets, tiny_clip_path):
    root, yamls = two_datasets
    out = tmp_path / "out"
    spec = Spec(host="CoOp", root=root, out=str(out), datasets=yamls, seeds=[1], shots=[2], host_config="cpu_tiny",
                dpc_config="cpu_tiny", opts=tiny_opts(tiny_clip_path))
    quiet = {"progress": False, "echo": lambda line: None}

    # 1. killed after stage 1: only the host's base training finished
    spec.stages = ("host-train",)
    first = InProcessTrain()
    assert [o.status for o in execute(build_plan(spec), executor=first, **quiet)] == [RAN, RAN]
    after_stage1 = results_mtimes(out)

    # 2. rerun everything: stage 1 is not trained again
    spec.stages = ("host-train", "host-test", "dpc-train", "dpc-test")
    runs = build_plan(spec)
    second = InProcessTrain()
    outcomes = execute(runs, executor=second, **quiet)
    assert [o.status for o in outcomes] == [DONE, RAN, RAN, RAN] * 2
    assert second.calls == [r.key for r in runs if r.stage != "host-train"]
    assert {k: v for k, v in results_mtimes(out).items() if k in after_stage1} == after_stage1

    records = {(r.dataset, r.stage): read_results(r.output_dir) for r in runs}
    for dataset in ("shapes_a", "shapes_b"):
        assert records[(dataset, "dpc-train")]["trainer"] == "DPC"
        assert records[(dataset, "dpc-train")]["subsample_classes"] == "base"
        # DPC keeps new-class accuracy exactly (omega_n = 0 routes new classes to the host's own prompt)
        assert records[(dataset, "dpc-test")]["accuracy"] == records[(dataset, "host-test")]["accuracy"]

    # 3. killed during dataset B's DPC stage after its checkpoint was saved: neither results.json exists
    dpc_train_b, dpc_test_b = [r for r in runs if r.dataset == "shapes_b" and r.stage.startswith("dpc")]
    os.remove(os.path.join(dpc_train_b.output_dir, "results.json"))
    os.remove(os.path.join(dpc_test_b.output_dir, "results.json"))
    untouched = results_mtimes(out)
    third = InProcessTrain()
    outcomes = execute(runs, executor=third, **quiet)
    assert third.calls == [dpc_train_b.key, dpc_test_b.key]
    assert [o.status for o in outcomes] == [DONE] * 6 + [RAN, RAN]
    assert {k: v for k, v in results_mtimes(out).items() if k in untouched} == untouched
    with open(os.path.join(dpc_train_b.output_dir, "pipeline_output.txt")) as f:
        assert "will resume training" in f.read()  # train.py picked up the checkpoint in the same directory

    # 4. the table reads exactly these results
    report = build_report(str(out), layout.BASE2NEW)
    tables = {t["method"]: t for t in report["tables"]}
    assert set(tables) == {"CoOp", "DPC_CoOp"}
    for method, stages in (("CoOp", ("host-train", "host-test")), ("DPC_CoOp", ("dpc-train", "dpc-test"))):
        rows = {row["dataset"]: row for row in tables[method]["rows"]}
        assert set(rows) == {"shapes_a", "shapes_b"}
        for dataset, row in rows.items():
            base, new = (read_results(r.output_dir)["accuracy"] for r in runs
                         if r.dataset == dataset and r.stage in stages)
            assert (row["base_mean"], row["new_mean"]) == (base, new)
            assert row["hm"] == pytest.approx(0.0 if base + new == 0 else 2 * base * new / (base + new))

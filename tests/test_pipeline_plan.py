"""The pipeline's run list and its runner, without training: command lines, layout, epochs, skip/failure logic."""
import os
import shlex
import subprocess
import sys

import pytest
from support.records import mark_finished

from tools import output_folders as layout
from tools.pipeline import cli as pipeline
from tools.pipeline.configs import resolve_trainer_config
from tools.pipeline.plan import Spec, build_plan
from tools.pipeline.runner import BLOCKED, DONE, FAILED, RAN, execute, summarize
from trainers.run.config_keys import ConfigError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAPER_DATASETS = ["imagenet", "caltech101", "oxford_pets", "stanford_cars", "oxford_flowers", "food101",
                  "fgvc_aircraft", "sun397", "dtd", "eurosat", "ucf101"]
DPC_PAPER_CFG = os.path.join(REPO, "configs", "trainers", "DPC", "vit_b16_ep20_batch4.yaml")
needs_dpc_config = pytest.mark.skipif(not os.path.isfile(DPC_PAPER_CFG),
                                      reason="configs/trainers/DPC/vit_b16_ep20_batch4.yaml not written yet")


def dry_run(capsys, *argv):
    assert pipeline.main([*argv, "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    return [shlex.split(line) for line in lines if line.startswith("python train.py")], lines


def opt(argv, key):
    """The value after ``key`` in a command line."""
    return argv[argv.index(key) + 1]


@needs_dpc_config
def test_dry_run_of_the_paper_coop_table(tmp_path, capsys):
    data, out = str(tmp_path / "data"), str(tmp_path / "out")
    commands, _ = dry_run(capsys, "--host", "CoOp", "--root", data, "--out", out)
    assert len(commands) == 11 * 3 * 4
    assert len({opt(c, "--output-dir") for c in commands}) == len(commands)
    assert not os.path.exists(out)  # a dry run writes nothing

    b2n = os.path.join(out, "base2new")
    s1 = f"{b2n}/train_base/imagenet/shots_16/CoOp/vit_b16_ep50_ctxv1/seed1"
    s2 = f"{b2n}/train_base/imagenet/shots_16/DPC_CoOp/vit_b16_ep20_batch4/seed1"
    head = ["python", "train.py", "--root", data, "--seed", "1"]
    ds = ["--dataset-config-file", "configs/datasets/imagenet.yaml"]
    host = [*head, "--trainer", "CoOp", *ds, "--config-file", "configs/trainers/CoOp/vit_b16_ep50_ctxv1.yaml"]
    dpc = [*head, "--trainer", "DPC", *ds, "--config-file", "configs/trainers/DPC/vit_b16_ep20_batch4.yaml"]
    cache = ["TEST.FEATURE_CACHE", os.path.join(out, ".feature_cache")]  # every run's, unless --no-feature-cache
    dpc_opts = [*cache, "TRAINER.DPC.HOST", "CoOp", "TRAINER.DPC.BACKBONE_DIR", s1, "TRAINER.DPC.BACKBONE_EPOCH", "50"]
    assert commands[:4] == [
        [*host, "--output-dir", s1, *cache, "DATASET.NUM_SHOTS", "16", "DATASET.SUBSAMPLE_CLASSES", "base"],
        [*host, "--output-dir", f"{b2n}/test_new/imagenet/shots_16/CoOp/vit_b16_ep50_ctxv1/seed1",
         "--eval-only", "--model-dir", s1, "--load-epoch", "50", *cache, "DATASET.NUM_SHOTS", "16",
         "DATASET.SUBSAMPLE_CLASSES", "new"],
        [*dpc, "--output-dir", s2, *dpc_opts, "DATASET.NUM_SHOTS", "16", "DATASET.SUBSAMPLE_CLASSES", "base"],
        [*dpc, "--output-dir", f"{b2n}/test_new/imagenet/shots_16/DPC_CoOp/vit_b16_ep20_batch4/seed1",
         "--eval-only", "--model-dir", s2, "--load-epoch", "20", *dpc_opts, "DATASET.NUM_SHOTS", "16",
         "DATASET.SUBSAMPLE_CLASSES", "new"],
    ]
    # every dataset x seed has the four stages; CoOp trains ImageNet 50 epochs and the others 200
    combos = {(os.path.basename(opt(c, "--dataset-config-file"))[:-5], opt(c, "--seed")) for c in commands}
    assert combos == {(d, s) for d in PAPER_DATASETS for s in ("1", "2", "3")}
    for c in commands:
        if "--eval-only" in c and opt(c, "--trainer") == "CoOp":
            assert opt(c, "--load-epoch") == ("50" if "imagenet.yaml" in opt(c, "--dataset-config-file") else "200")
        if opt(c, "--trainer") == "DPC":
            e1 = opt(c, "TRAINER.DPC.BACKBONE_EPOCH")
            assert e1 == ("50" if "imagenet.yaml" in opt(c, "--dataset-config-file") else "200")
            host_cfg = "vit_b16_ep50_ctxv1" if e1 == "50" else "vit_b16_ctxv1"
            assert opt(c, "TRAINER.DPC.BACKBONE_DIR").endswith(f"/CoOp/{host_cfg}/seed{opt(c, '--seed')}")


@pytest.mark.slow
@needs_dpc_config
def test_reproduce_script_dry_run_prints_the_full_list(tmp_path):
    env = {**os.environ, "DATA": str(tmp_path / "data"), "OUTPUT": str(tmp_path / "out"), "PYTHON": sys.executable}
    done = subprocess.run(["bash", "scripts/reproduce_base2new.sh", "CoOp", "--dry-run"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    commands = [line for line in done.stdout.splitlines() if line.startswith("python train.py")]
    assert len(commands) == 132
    assert f"--output-dir {tmp_path}/out/base2new/train_base/ucf101/shots_16/DPC_CoOp" in commands[-2]


@pytest.mark.slow
@needs_dpc_config
def test_step_scripts_run_one_stage_each(tmp_path):
    env = {**os.environ, "DATA": str(tmp_path / "data"), "PYTHON": sys.executable}
    out = tmp_path / "out"
    commands = {}
    for script in ("scripts/coop/base2new_test.sh caltech101 2", "scripts/dpc/xd_test.sh --host CoOp imagenetv2 3"):
        done = subprocess.run(["bash", *script.split(), "--output", str(out), "--dry-run"], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        (line,) = [line for line in done.stdout.splitlines() if line.startswith("python train.py")]
        commands[script.split()[0]] = shlex.split(line)
    host = commands["scripts/coop/base2new_test.sh"]
    assert opt(host, "--trainer") == "CoOp" and opt(host, "--seed") == "2" and "--eval-only" in host
    assert opt(host, "--output-dir") == f"{out}/base2new/test_new/caltech101/shots_16/CoOp/vit_b16_ctxv1/seed2"
    dpc = commands["scripts/dpc/xd_test.sh"]
    assert opt(dpc, "--trainer") == "DPC" and opt(dpc, "--dataset-config-file") == "configs/datasets/imagenetv2.yaml"
    assert opt(dpc, "--model-dir") == f"{out}/xd/train/imagenet/shots_16/DPC_CoOp/vit_b16_ep20_batch4/seed3"


def test_scripts_need_data(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DATA"}
    for script in ("scripts/reproduce_base2new.sh CoOp", "scripts/coop/base2new_train.sh caltech101 1",
                   "scripts/dpc/base2new_test.sh --host CoOp caltech101 1"):
        done = subprocess.run(["bash", *script.split()], cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 2 and "DATA is not set" in done.stderr, script


def test_dry_run_comments_out_finished_runs(tmp_path, capsys):
    args = ["--host", "CoOp", "--root", str(tmp_path), "--out", str(tmp_path / "out"), "--datasets", "caltech101",
            "--seeds", "1", "--stages", "host-train", "host-test"]
    first, _ = dry_run(capsys, *args)
    mark_finished(next(run for run in build_plan(Spec(host="CoOp", root=str(tmp_path), out=str(tmp_path / "out"),
                                                      datasets=["caltech101"], seeds=[1], stages=("host-train",)),
                                                 warn=lambda m: None)))
    second, lines = dry_run(capsys, *args)
    assert second == first[1:]
    assert any(line.startswith("# finished, skipped: python train.py") for line in lines)


@needs_dpc_config
def test_cross_dataset_and_dg_share_the_imagenet_training(tmp_path):
    spec = dict(host="CoOp", root=str(tmp_path), out=str(tmp_path / "out"), seeds=[1])
    xd = build_plan(Spec(mode=layout.CROSS_DATASET, **spec), warn=lambda m: None)
    dg = build_plan(Spec(mode=layout.DOMAIN_GENERALIZATION, **spec), warn=lambda m: None)
    assert [r.stage for r in xd] == ["host-train"] + ["host-test"] * 10 + ["dpc-train"] + ["dpc-test"] * 10
    assert len(dg) == 10
    assert xd[0].output_dir == dg[0].output_dir and xd[0].output_dir.endswith(
        "xd/train/imagenet/shots_16/CoOp/vit_b16_ep50_ctxv1/seed1")
    assert opt(xd[0].argv, "DATASET.SUBSAMPLE_CLASSES") == "all"
    assert {r.dataset for r in dg if r.stage == "dpc-test"} == {"imagenetv2", "imagenet_sketch", "imagenet_a",
                                                                  "imagenet_r"}
    for run in xd[1:11]:
        assert opt(run.argv, "--model-dir") == xd[0].output_dir and opt(run.argv, "--load-epoch") == "50"
        assert opt(run.argv, "DATASET.SUBSAMPLE_CLASSES") == "all" and "DATASET.NUM_SHOTS" not in run.argv
    for run in xd[12:]:
        assert opt(run.argv, "--model-dir") == xd[11].output_dir and run.needs == [xd[11]]


@needs_dpc_config
def test_few_shot_plan(tmp_path):
    runs = build_plan(Spec(host="CoOp", root=str(tmp_path), out=str(tmp_path), mode=layout.FEW_SHOT),
                      warn=lambda m: None)
    assert len(runs) == 11 * 5 * 3 * 2
    assert {r.shots for r in runs} == {1, 2, 4, 8, 16}
    assert all(opt(r.argv, "DATASET.SUBSAMPLE_CLASSES") == "all" for r in runs)
    assert runs[0].output_dir == os.path.join(str(tmp_path), "few_shot/imagenet/shots_1/CoOp/vit_b16_ep50_ctxv1/seed1")


def test_epochs_follow_the_options(tmp_path):
    spec = Spec(host="CoOp", root=str(tmp_path), out=str(tmp_path), datasets=["caltech101"], seeds=[2],
                host_config="cpu_tiny", dpc_config="cpu_tiny", opts=["OPTIM.MAX_EPOCH", "3"],
                dpc_opts=["OPTIM.MAX_EPOCH", "5"])
    host_train, host_test, dpc_train, dpc_test = build_plan(spec, warn=lambda m: None)
    assert opt(host_test.argv, "--load-epoch") == "3"
    assert opt(dpc_train.argv, "TRAINER.DPC.BACKBONE_EPOCH") == "3"
    assert opt(dpc_test.argv, "--load-epoch") == "5"
    assert opt(dpc_train.argv, "--config-file") == "configs/trainers/DPC/cpu_tiny.yaml"


def test_clear_errors_before_anything_runs(tmp_path, capsys, monkeypatch):
    with pytest.raises(ConfigError, match=r"No CoOp config named 'vit_b99'.*available: .*vit_b16_ctxv1"):
        resolve_trainer_config("vit_b99", "CoOp")
    base = ["--root", str(tmp_path), "--out", str(tmp_path), "--datasets", "caltech101", "--dry-run"]
    cases = {
        ("--host", "NoSuchHost"): "Unknown host trainer 'NoSuchHost': not registered",
        ("--host", "ZeroshotCLIP", "--stages", "host-train"): "Host 'ZeroshotCLIP' declares no paper configs",
        ("--host", "CoOp", "--opts", "OPTIM.MAX_EPOCH"): "KEY VALUE pairs",
        ("--host", "CoOp", "--datasets", "no_such_dataset"): "No dataset config named 'no_such_dataset'",
        ("--host", "CoOp", "--host-config", "cpu_tiny", "--opts", "OPTIM.NO_SUCH_KEY", "1"): "does not load",
    }
    for args, message in cases.items():
        with pytest.raises(SystemExit) as exit_info:
            pipeline.main([*base, *args])
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err, args
    monkeypatch.delenv("DATA", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        pipeline.main(["--host", "CoOp", "--dry-run"])
    assert exit_info.value.code == 2 and "No dataset root: pass --root DATA" in capsys.readouterr().err


# ---- the runner, with a stand-in for train.py ------------------------------------------------------------

def small_plan(tmp_path, stages=None):
    for name in ("good", "broken"):
        (tmp_path / f"{name}.yaml").write_text(f'DATASET:\n  NAME: "ImageFolder"\n  FOLDER: "{name}"\n')
    spec = Spec(host="CoOp", root=str(tmp_path), out=str(tmp_path / "out"), seeds=[1],
                datasets=[str(tmp_path / "good.yaml"), str(tmp_path / "broken.yaml")],
                host_config="cpu_tiny", dpc_config="cpu_tiny")
    if stages:
        spec.stages = tuple(stages)
    return build_plan(spec, warn=lambda m: None)


class FakeTrain:
    """Finishes a run by writing its results.json, except on the dataset named ``broken``."""

    def __init__(self, broken=("broken",), silent=()):
        self.calls, self.broken, self.silent = [], set(broken), set(silent)

    def __call__(self, run, output_file):
        self.calls.append(run.key)
        if run.dataset in self.broken:
            with open(output_file, "a") as f:
                f.write("Traceback ...\nFileNotFoundError: no folder broken\n")
            return 1
        if run.key not in self.silent:
            mark_finished(run)
        return 0


def test_a_failure_blocks_only_the_runs_that_need_it(tmp_path):
    runs = small_plan(tmp_path)
    fake = FakeTrain()
    outcomes = execute(runs, executor=fake, progress=False, echo=lambda line: None)
    status = {(o.run.dataset, o.run.stage): o for o in outcomes}
    assert [status[("good", s)].status for s in ("host-train", "host-test", "dpc-train", "dpc-test")] == [RAN] * 4
    failed = status[("broken", "host-train")]
    assert failed.status == FAILED
    assert failed.output_file in failed.message and "no folder broken" in failed.message
    assert failed.output_file == os.path.join(failed.run.output_dir, "pipeline_output.txt")
    for stage in ("host-test", "dpc-train", "dpc-test"):
        assert status[("broken", stage)].status == BLOCKED
    assert "needs base2new/train_base/broken" in status[("broken", "dpc-train")].message
    assert fake.calls == [r.key for r in runs if r.dataset == "good"] + [runs[4].key]
    assert "8 runs: 4 ran, 0 already finished (skipped), 1 failed, 3 blocked" in summarize(outcomes)

    # the second time, finished runs are skipped and the broken one is tried again
    fake = FakeTrain()
    outcomes = execute(runs, executor=fake, progress=False, echo=lambda line: None)
    assert [o.status for o in outcomes[:4]] == [DONE] * 4
    assert fake.calls == [runs[4].key]


def test_unselected_unfinished_dependency_blocks_with_a_reason(tmp_path):
    runs = small_plan(tmp_path, stages=["dpc-train"])
    assert [r.stage for r in runs] == ["dpc-train", "dpc-train"]
    outcomes = execute(runs, executor=FakeTrain(), progress=False, echo=lambda line: None)
    assert outcomes[0].status == BLOCKED
    assert "not among the selected stages" in outcomes[0].message


def test_exit_zero_without_results_is_a_failure(tmp_path):
    runs = small_plan(tmp_path, stages=["host-train"])[:1]
    outcomes = execute(runs, executor=FakeTrain(silent={runs[0].key}), progress=False, echo=lambda line: None)
    assert outcomes[0].status == FAILED and "exited 0 but no results.json" in outcomes[0].message


def test_a_planned_run_builds_its_config_once(tmp_path, monkeypatch):
    """Planning (epochs, best-val choice) and checking every run's state (its expected identity) build each
    run's config once: 2 datasets x 2 seeds x 4 stages = 16 runs, 16 builds, and none when checked again."""
    from tools.pipeline.run_state import expected_identity, stale_reason, unfinished_reason
    from trainers.engine import config

    builds = []
    build_cfg = config.build_cfg
    monkeypatch.setattr(config, "build_cfg", lambda *args, **kwargs: builds.append(args) or build_cfg(*args, **kwargs))
    spec = Spec(host="CoOp", root=str(tmp_path / "data"), out=str(tmp_path / "out"), datasets=["caltech101", "dtd"],
                seeds=[1, 2])
    runs = build_plan(spec)
    for _ in range(2):
        for run in runs:
            expected_identity(run), unfinished_reason(run), stale_reason(run), run.max_epoch()
    assert len(runs) == 16 and len(builds) == 16


@pytest.mark.parametrize("module, argv", [("tools.pipeline", ["--host", "NoSuchHost", "--dry-run"]),
                                          ("tools.tables", ["no/such/output/root"])])
@pytest.mark.slow
def test_the_entry_points_exit_with_their_status_and_one_error_line(module, argv, tmp_path):
    done = subprocess.run([sys.executable, "-m", module, *argv], cwd=REPO, capture_output=True, text=True)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) <= 2 and "error" in done.stderr, done.stderr

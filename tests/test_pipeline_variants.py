"""Sweeps and the paper's variants in the pipeline: what each plans (trainings shared, evaluation-only keys only
evaluated), where the runs live, and that the planned evaluations are the --eval-only runs one would make by hand."""
import os
import subprocess
import sys
from collections import Counter

import pytest
from support.runs import run_train
from support.small_pipeline import make_two_datasets, tiny_opts
from test_pipeline_run import InProcessTrain

from tools import output_folders as layout
from tools.paper_experiments import ABLATION_ROWS
from tools.pipeline.plan import Spec, build_plan
from tools.pipeline.runner import DONE, RAN, execute
from tools.pipeline.variants import plan_variants
from trainers.run.config_keys import ConfigError
from trainers.run.paths import REPO_DIR
from trainers.run.record import read_results

WEIGHT_NEW = "TRAINER.DPC.WEIGHT_NEW"


def plan(tmp_path, *, sweeps=(), names=(), dpc_opts=(), datasets=("caltech101", "dtd"), seeds=(1, 2)):
    spec = Spec(host="CoOp", root=str(tmp_path / "data"), out=str(tmp_path / "out"), datasets=list(datasets),
                seeds=list(seeds), host_config="cpu_tiny", dpc_config="cpu_tiny", dpc_opts=list(dpc_opts),
                variants=plan_variants(names, sweeps))
    return build_plan(spec, warn=lambda m: None)


def per_dataset_and_seed(runs):
    """(dataset, seed) -> Counter of (stage, eval_only, phase folder)."""
    counts = {}
    for run in runs:
        phase = run.key.split(os.sep)[1]
        counts.setdefault((run.dataset, run.seed), Counter())[(run.stage, run.eval_only, phase)] += 1
    return counts


def test_a_sweep_over_weight_new_trains_once_and_evaluates_each_value(tmp_path):
    values = ["0", "0.1", "0.5"]
    runs = plan(tmp_path, sweeps=[f"{WEIGHT_NEW}={','.join(values)}"])
    for counts in per_dataset_and_seed(runs).values():
        assert counts == {("host-train", False, "train_base"): 1, ("host-test", True, "test_new"): 1,
                          ("dpc-train", False, "train_base"): 1,  # the plain DPC run: ω_n only changes the test
                          ("dpc-test", True, "test_new"): 3, ("dpc-test", True, "train_base"): 3}
    trained = {(r.dataset, r.seed): r for r in runs if r.stage == "dpc-train"}
    assert all(r.key.split(os.sep)[-2] == "cpu_tiny" for r in trained.values())
    for run in (r for r in runs if r.stage == "dpc-test"):
        assert run.model_dir == trained[(run.dataset, run.seed)].output_dir and run.needs == [trained[(run.dataset,
                                                                                                       run.seed)]]
        cfg, settings = layout.parse_variant_dir_name(run.key.split(os.sep)[-2])
        assert cfg == "cpu_tiny" and run.argv[-2:] == [WEIGHT_NEW, settings[WEIGHT_NEW]]
    assert sorted(layout.parse_variant_dir_name(r.key.split(os.sep)[-2])[1][WEIGHT_NEW] for r in runs
                  if r.stage == "dpc-test" and r.dataset == "dtd" and r.seed == 2 and "test_new" in r.key) == values


def test_a_sweep_over_a_training_key_trains_each_value(tmp_path):
    runs = plan(tmp_path, sweeps=["TRAINER.DPC.TOPK=2,4,6", f"{WEIGHT_NEW}=0,1.0"], datasets=["dtd"], seeds=[1])
    trainings = [r for r in runs if r.stage == "dpc-train"]
    assert [layout.parse_variant_dir_name(r.key.split(os.sep)[-2])[1] for r in trainings] == [
        {"TRAINER.DPC.TOPK": k} for k in ("2", "4", "6")]  # ω_n is no part of what trains
    tests = [r for r in runs if r.stage == "dpc-test" and "test_new" in r.key]
    assert len(tests) == 6 and len({r.output_dir for r in tests}) == 6
    for run in tests:
        topk = layout.parse_variant_dir_name(run.key.split(os.sep)[-2])[1]["TRAINER.DPC.TOPK"]
        assert run.model_dir.endswith(f"cpu_tiny@TRAINER.DPC.TOPK={topk}/seed1")


def test_weight_base_trains_in_parallel_mode_and_only_evaluates_in_mixed_mode(tmp_path):
    sweep = ["TRAINER.DPC.WEIGHT_BASE=0.0,0.5,1.0"]
    parallel = plan(tmp_path, sweeps=sweep, datasets=["dtd"], seeds=[1])
    mixed = plan(tmp_path, sweeps=sweep, datasets=["dtd"], seeds=[1], dpc_opts=["TRAINER.DPC.BASE_PROMPT", "mixed"])
    assert sum(r.stage == "dpc-train" for r in parallel) == 3
    assert sum(r.stage == "dpc-train" for r in mixed) == 1
    assert sum(r.eval_only and r.stage == "dpc-test" for r in mixed) == 6  # base and new, per value


def test_the_ablation_plans_its_rows_with_shared_trainings(tmp_path):
    runs = plan(tmp_path, names=["ablation"], datasets=["dtd"], seeds=[1])
    trainings = [layout.parse_variant_dir_name(r.key.split(os.sep)[-2])[1] for r in runs if r.stage == "dpc-train"]
    # TS+DHNO+WE and DPC differ in ω_n only, and train as the plain DPC config does (DHNO on, ω_b 0.2)
    assert trainings == [{"TRAINER.DPC.DHNO": "False", "TRAINER.DPC.WEIGHT_BASE": "1.0"},
                         {"TRAINER.DPC.WEIGHT_BASE": "1.0"}, {}, {"TRAINER.DPC.DHNO": "False"}]
    for phase in ("train_base", "test_new"):
        folders = [r.key.split(os.sep)[-2] for r in runs if r.stage == "dpc-test" and phase in r.key]
        assert folders == [layout.variant_dir_name("cpu_tiny", settings) for _, settings in ABLATION_ROWS]


def test_bad_sweeps_are_clear_errors():
    with pytest.raises(ConfigError, match="KEY=V1,V2"):
        plan_variants(sweeps=["TRAINER.DPC.TOPK"])
    with pytest.raises(ConfigError, match="a host key changes stage 1"):
        plan_variants(sweeps=["TRAINER.COOP.N_CTX=2,4"])
    with pytest.raises(ConfigError, match="names a key twice"):
        plan_variants(sweeps=["TRAINER.DPC.TOPK=2", "TRAINER.DPC.TOPK=4"])


def test_sweep_evaluations_equal_eval_only_runs_by_hand_and_finished_variants_are_skipped(tmp_path, tiny_clip_path):
    root, yamls = make_two_datasets(str(tmp_path))
    spec = Spec(host="CoOp", root=root, out=str(tmp_path / "out"), datasets=yamls[:1], seeds=[1], shots=[2],
                host_config="cpu_tiny", dpc_config="cpu_tiny", opts=tiny_opts(tiny_clip_path),
                variants=plan_variants(sweeps=[f"{WEIGHT_NEW}=0,1.0"]))
    runs = build_plan(spec, warn=lambda m: None)
    quiet = {"progress": False, "echo": lambda line: None}
    assert [o.status for o in execute(runs, executor=InProcessTrain(), **quiet)] == [RAN] * len(runs)
    (trained,) = [r for r in runs if r.stage == "dpc-train"]
    for run in (r for r in runs if r.stage == "dpc-test"):
        subsample = "new" if "test_new" in run.key else "base"
        weight = layout.parse_variant_dir_name(run.key.split(os.sep)[-2])[1][WEIGHT_NEW]
        hand = tmp_path / "hand" / f"{subsample}_{weight}"
        run_train("--root", root, "--seed", 1, "--trainer", "DPC", "--dataset-config-file", yamls[0],
                  "--config-file", "configs/trainers/DPC/cpu_tiny.yaml", "--output-dir", hand,
                  "--eval-only", "--model-dir", trained.output_dir, "--load-epoch", 1,
                  *tiny_opts(tiny_clip_path), "DATASET.NUM_SHOTS", 2, "DATASET.SUBSAMPLE_CLASSES", subsample,
                  WEIGHT_NEW, weight)
        planned, by_hand = read_results(run.output_dir), read_results(str(hand))
        assert (planned["accuracy"], planned["n"], planned["subsample_classes"]) == (
            by_hand["accuracy"], by_hand["n"], subsample)
        assert planned["config"]["TRAINER"]["DPC"]["WEIGHT_NEW"] == float(weight)
    again = InProcessTrain()
    assert [o.status for o in execute(build_plan(spec, warn=lambda m: None), executor=again, **quiet)] == [
        DONE] * len(runs)
    assert again.calls == []


@pytest.mark.parametrize("script, trainings, evaluations", [
    # per dataset and seed: the host's training and new-class test; four DPC trainings (DHNO on/off x ω_b 1/0.2),
    # and for each of the five DPC rows an evaluation on base classes (its folder is not its training's) and one
    # on new classes
    ("scripts/reproduce_ablation.sh", 1 + 4, 1 + 5 + 5),
    # the host's two runs; six DPC trainings (ω_b 0.2 is the plain run, which the ω_n sweep evaluates); ω_b: one
    # base evaluation (0.2's folder) and six new; ω_n: six base and six new evaluations
    ("scripts/reproduce_weight_sweeps.sh", 1 + 6, 1 + 1 + 6 + 6 + 6),
])
def test_the_paper_scripts_dry_runs_count_their_runs(tmp_path, script, trainings, evaluations):
    env = {**os.environ, "DATA": str(tmp_path / "data"), "OUTPUT": str(tmp_path / "out"), "PYTHON": sys.executable}
    done = subprocess.run(["bash", script, "CoOp", "--dry-run", "--", "--datasets", "dtd", "eurosat", "--seeds", "1",
                           "3"], cwd=REPO_DIR, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    commands = [line for line in lines if line.startswith("python train.py")]
    runs = 4 * (trainings + evaluations)
    assert lines[0].startswith(f"# {runs} runs: {4 * trainings} trainings, {4 * evaluations} evaluations")
    assert len(commands) == runs and sum("--eval-only" in c for c in commands) == 4 * evaluations

"""The demo's run list: zero-shot on base and new once, then the CoOp -> DPC base-to-new stages, per seed."""
from collections import Counter

from support.records import finished_record

from tools import output_folders as layout
from tools.demo import cli as demo
from tools.pipeline.plan import Spec, build_plan
from trainers.run.record import write_results


def test_demo_runs_zero_shot_once_and_every_other_stage_per_seed(tmp_path):
    runs = demo.zero_shot_runs(str(tmp_path / "data"), str(tmp_path / "out"), [1, 2])
    spec = Spec(host="CoOp", root=str(tmp_path / "data"), out=str(tmp_path / "out"), datasets=[demo.DATASET_CONFIG],
                seeds=[1, 2], shots=[demo.SHOTS], host_config=demo.HOST_CONFIG, dpc_config=demo.DPC_CONFIG)
    runs += build_plan(spec)
    assert Counter(run.stage for run in runs) == {
        "zero-shot-base": 1, "zero-shot-new": 1, "host-train": 2, "host-test": 2, "dpc-train": 2, "dpc-test": 2}
    assert len({run.output_dir for run in runs}) == len(runs)
    zero_shot_new = next(run for run in runs if run.stage == "zero-shot-new")
    assert "--eval-only" in zero_shot_new.argv and zero_shot_new.argv[-3] == "new"
    assert zero_shot_new.argv[-2:] == ["TEST.FEATURE_CACHE", str(tmp_path / "out" / ".feature_cache")]


def test_demo_table_has_one_row_per_method_in_order(tmp_path):
    accuracies = {demo.ZERO_SHOT: (60.0, 80.0), "CoOp": (70.0, 70.0), "DPC_CoOp": (72.0, 70.0)}
    for method, (base, new) in accuracies.items():
        for phase, accuracy in (("train", base), ("test", new)):
            for seed, shift in ((1, -1.0), (2, 1.0)):
                run = layout.run_dir(str(tmp_path), layout.BASE2NEW, phase, "demo_world", 16, method, "cfg", seed)
                write_results(run, finished_record(accuracy + shift, seed=seed,
                                                   subsample="base" if phase == "train" else "new"))
    lines = demo.demo_table(str(tmp_path), [1, 2]).splitlines()[2:]
    assert [line.split("|")[1].strip() for line in lines] == ["ZeroshotCLIP", "CoOp", "CoOp+DPC"]
    assert [cell.strip() for cell in lines[2].split("|")[2:5]] == [  # each seed's number after mean ± std
        "72.00 ± 1.00 (71.00 / 73.00)", "70.00 ± 1.00 (69.00 / 71.00)", "70.99"]  # HM(72, 70)

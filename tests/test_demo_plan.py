"""The demo's run list: zero-shot on base and new, then the CoOp -> DPC base-to-new stages, per seed."""
from collections import Counter

from tools import demo
from tools.plan import Spec, build_plan
from trainers import extend_cfg
from trainers.engine import get_cfg_default


def test_demo_runs_every_method_and_stage_per_seed(tmp_path):
    runs = demo.zero_shot_runs(str(tmp_path / "data"), str(tmp_path / "out"), [1, 2])
    spec = Spec(host="CoOp", root=str(tmp_path / "data"), out=str(tmp_path / "out"), datasets=[demo.DATASET_CONFIG],
                seeds=[1, 2], shots=[demo.SHOTS], host_config=demo.HOST_CONFIG, dpc_config=demo.DPC_CONFIG)
    runs += build_plan(spec)
    assert Counter(run.stage for run in runs) == {
        "zero-shot-base": 2, "zero-shot-new": 2, "host-train": 2, "host-test": 2, "dpc-train": 2, "dpc-test": 2}
    assert len({run.output_dir for run in runs}) == len(runs)
    zero_shot_new = next(run for run in runs if run.stage == "zero-shot-new")
    assert "--eval-only" in zero_shot_new.argv and zero_shot_new.argv[-1] == "new"


def test_demo_dpc_config_wraps_coop_with_the_demo_backbone():
    cfg = extend_cfg(get_cfg_default())
    cfg.merge_from_file(demo.DPC_CONFIG)
    host = extend_cfg(get_cfg_default())
    host.merge_from_file(demo.HOST_CONFIG)
    assert cfg.TRAINER.DPC.HOST == "CoOp" and cfg.TRAINER.DPC.WEIGHT_NEW == 0.0
    assert cfg.MODEL.BACKBONE.NAME == host.MODEL.BACKBONE.NAME == "configs/demo/demo_clip.pt"
    assert cfg.TRAINER.COOP == host.TRAINER.COOP  # the same CoOp prompts as stage 1

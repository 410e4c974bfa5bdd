"""The dry run's cost estimate (tools/pipeline/cost.py), checked by hand on a small plan: CoOp and DPC on DTD."""
import pytest

from tools.pipeline.cost import DEFAULT_TFLOPS, TOWER_FLOPS, cost_lines, estimate
from tools.pipeline.plan import Spec, build_plan
from tools.pipeline.variants import plan_variants


def dtd_plan(tmp_path, variants=None):
    spec = Spec(host="CoOp", root=str(tmp_path), out=str(tmp_path / "out"), datasets=["dtd"], seeds=[1], shots=[16],
                host_config="cpu_tiny", dpc_config="cpu_tiny", opts=["MODEL.BACKBONE.NAME", "ViT-B/16"],
                variants=variants or [{}])
    return build_plan(spec, warn=lambda m: None)


def test_the_estimate_of_a_small_plan_by_hand(tmp_path):
    # DTD: 47 classes (24 base, 23 new), 1692 test images (864 of base classes, 828 of new ones); 16 shots.
    # host-train: CoOp cpu_tiny, batch 8, 4 epochs: 384 images -> 48 steps an epoch, 192 steps, each 8 images and
    #   the 24 classes' text (with a backward; CoOp's image tower is CLIP's own: no backward); its test 864 + 24
    # host-test: 828 images, 23 classes
    # dpc-train: batch 4, 2 epochs: 96 steps an epoch, 192 steps; K 8: M = 4 + min(4 * 7, 24 - 4) = 24 images
    #   and the 24 classes present; P's text once (24); its test 864 + 24
    # dpc-test: 828 + 23
    cost = estimate(dtd_plan(tmp_path))
    assert (cost.runs, cost.trainings, cost.evaluations, cost.not_estimated) == (4, 2, 2, [])
    assert cost.training_steps == 192 + 192
    assert cost.image_forward == 192 * 8 + 864 + 828 + 192 * 24 + 864 + 828 and cost.image_backward == 0
    assert cost.text_forward == 192 * 24 + 24 + 23 + 192 * 24 + 24 + 24 + 23
    assert cost.text_backward == 192 * 24 * 2
    image, text = TOWER_FLOPS["ViT-B/16"]
    flops = cost.image_forward * image + (cost.text_forward + cost.text_backward) * text
    assert cost.flops == pytest.approx(flops)
    assert cost.gpu_hours(50) == pytest.approx(flops / 50e12 / 3600)
    lines = cost_lines(cost)
    assert f"{cost.training_steps:,} training steps" in lines[0]
    assert f"{cost.gpu_hours():,.1f} GPU-hours at {DEFAULT_TFLOPS:g} TFLOP/s" in lines[1]


def test_dhno_off_costs_a_host_step_and_unknown_datasets_are_named(tmp_path):
    with_dhno = estimate([r for r in dtd_plan(tmp_path) if r.stage == "dpc-train"])
    runs = dtd_plan(tmp_path, plan_variants(sweeps=["TRAINER.DPC.DHNO=False"]))
    without = estimate([r for r in runs if r.stage == "dpc-train" and "DHNO" in r.key])
    assert without.training_steps == with_dhno.training_steps == 192
    assert without.image_forward == 192 * 4 + 864 and without.text_backward == 192 * 24
    assert with_dhno.image_forward - without.image_forward == 192 * 20  # the negatives
    runs[0].dataset = "my_own_data"
    cost = estimate(runs[:1])
    assert cost.not_estimated == [runs[0].key] and cost.flops == 0
    assert "not estimated: 1 of 1 runs" in cost_lines(cost)[-1]

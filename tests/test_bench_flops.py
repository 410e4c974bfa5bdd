"""The benchmark's machine-independent number: a DPC step costs the FLOPs of a CoOp step on the same M images."""
import pytest

from tools.bench import dpc_step as bench_dpc_step


@pytest.mark.parametrize("host_loss_weight", [0.0, 1.0])
def test_dpc_step_flops_are_those_of_a_coop_step_on_the_same_images(tmp_path, host_loss_weight):
    dpc, coop, _ = bench_dpc_step.build_pair(str(tmp_path), classes=16, host_loss_weight=host_loss_weight)
    try:
        ratios, images = bench_dpc_step.flop_ratios(dpc, coop, steps=2)
    finally:
        dpc.negative_pool.close()
    assert min(images) > 4  # anchors and negatives
    assert all(0.5 < ratio <= 1.02 for ratio in ratios), ratios

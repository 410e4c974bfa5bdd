"""``tools/bench/memory.py``'s count on the meta device, at a small width and the paper's depths, so that it is fast:
with the default ``MODEL.TEXT_CHUNK`` the bytes one training step saves at 1000 classes are at most 1.25 times
those at 100 for every host whose text features carry a gradient; unchunked they grow with the classes."""
import pytest

from tools.bench.memory import measure

# clip.model.CLIP's arguments: 9 layers in each tower (the paper's prompt depth), width 64, 32-pixel images
SMALL = dict(embed_dim=32, image_resolution=32, vision_layers=9, vision_width=64, vision_patch_size=8,
             context_length=77, vocab_size=49408, transformer_width=64, transformer_heads=4, transformer_layers=9)


def saved(host, num_classes, chunk=None, dpc=False, host_loss_weight=0.0):
    return measure(host, num_classes, chunk, dpc, host_loss_weight, clip_shape=SMALL)["saved"]


@pytest.mark.slow
@pytest.mark.parametrize("host", ["CoOp", "KgCoOp", "CoCoOp", "MaPLe", "IVLP", "PromptSRC"])
def test_saved_bytes_are_flat_in_the_class_count_with_the_defaults(host):
    at_100, at_1000 = saved(host, 100), saved(host, 1000)
    assert at_1000 <= 1.25 * at_100
    assert saved(host, 1000, chunk=0) > 8 * at_100  # one call for all classes: linear in the classes


@pytest.mark.slow
def test_dpc_with_the_host_loss_is_flat_too():
    """With HOST_LOSS_WEIGHT > 0 DPC encodes all classes with a gradient; its chunks keep that flat."""
    at_100, at_1000 = (saved("CoOp", n, dpc=True, host_loss_weight=1.0) for n in (100, 1000))
    assert at_1000 <= 1.25 * at_100
    assert saved("CoOp", 1000, chunk=0, dpc=True, host_loss_weight=1.0) > 5 * at_100


@pytest.mark.slow
def test_peak_counts_one_chunk_recomputed():
    """1000 classes in chunks of at most 128: eight of 125, one recomputed at a time, whose activations are those
    of 125 classes' unchunked pass (CoOp's image side has no graph)."""
    counts = measure("CoOp", 1000, clip_shape=SMALL)
    recomputed = counts["peak"] - counts["weights"] - counts["trained"] - counts["saved"]
    assert 1.2 < recomputed / saved("CoOp", 100) < 1.3


def test_the_gpu_check_without_cuda_says_so_in_one_line(monkeypatch, capsys):
    from tools.bench import gpu_check

    monkeypatch.setattr(gpu_check.torch.cuda, "is_available", lambda: False)
    assert gpu_check.main([]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "No CUDA device" in out and "did not run" in out

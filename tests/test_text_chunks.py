"""Class-chunked text encoding (``MODEL.TEXT_CHUNK``, ``trainers/prompted_clip/text_chunks.py``): for every host and
for DPC over it, the chunked pass gives the unchunked pass's values bit for bit and its gradients within fp32
rounding, under autocast too; the default leaves small class counts alone; CoCoOp never holds B x C prompts."""
import pytest
import torch
from support.hosts import HOSTS, build_host, host_cfg, random_images
from torch.utils._python_dispatch import TorchDispatchMode

from trainers.dpc.prompts import DualPrompts
from trainers.engine.identity import config_hash
from trainers.host_api.interface import text_chunk
from trainers.prompted_clip import text_chunks
from trainers.prompted_clip.text_chunks import chunk_bounds
from trainers.run.config_keys import ConfigError

# 12 classes whose names differ in length, so that the prompts end at different positions
pytestmark = pytest.mark.usefixtures("promptkd_teacher")  # HOSTS include PromptKD

CLASSNAMES = [f"{'very ' * (i % 3)}odd shape {i}" for i in range(12)]
CHUNK = 5  # three chunks of 4 classes


def prompt_grads(model):
    return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


def assert_close_grads(chunked, whole):
    assert chunked.keys() == whole.keys() and whole
    for name, grad in whole.items():
        scale = grad.abs().max().item()
        torch.testing.assert_close(chunked[name], grad, rtol=1e-4, atol=1e-6 * max(scale, 1.0), msg=name)


def host_step(model, chunk, images, labels):
    """(logits, loss, prompt gradients) of the host's own training loss with ``chunk`` classes per text call."""
    model.text_chunk = chunk
    model.zero_grad(set_to_none=True)
    out = model.loss(images, labels)
    out.total.backward()
    return out.logits.detach(), out.total.detach(), prompt_grads(model)


def test_chunk_bounds():
    assert chunk_bounds(12, 5) == [(0, 4), (4, 8), (8, 12)]
    assert chunk_bounds(300, 128) == [(0, 100), (100, 200), (200, 300)]
    assert chunk_bounds(11, 5) == [(0, 4), (4, 8), (8, 11)]
    assert chunk_bounds(12, 12) == chunk_bounds(12, 0) == chunk_bounds(12, 100) == [(0, 12)]


@pytest.mark.parametrize("host", HOSTS)
def test_chunked_training_pass_equals_the_whole(host):
    model = build_host(host, classnames=CLASSNAMES)
    model.train()
    images, labels = random_images(4), torch.tensor([0, 5, 11, 7])
    logits, loss, grads = host_step(model, 0, images, labels)
    chunked_logits, chunked_loss, chunked_grads = host_step(model, CHUNK, images, labels)
    assert torch.equal(chunked_logits, logits) and torch.equal(chunked_loss, loss)
    assert_close_grads(chunked_grads, grads)


@pytest.mark.parametrize("host", HOSTS)
def test_chunked_dpc_pass_equals_the_whole(host):
    """DPC over the host: a mix of P and P' swapped in by ``functional_call``; the chunks are recomputed in the
    backward, after the swap has ended, and still give the gradients of the unchunked pass."""
    model = build_host(host, classnames=CLASSNAMES)
    prompts = DualPrompts(model)
    for p in model.parameters():
        p.requires_grad_(False)
    for p in prompts.parallel_parameters():
        p.requires_grad_(True)
    with torch.no_grad():
        for p in prompts.parallel_parameters():  # P' away from P, so that the mix is neither
            p.add_(0.01 * torch.randn(p.shape, generator=torch.Generator().manual_seed(1)).to(p.dtype))
    images = random_images(3)

    def step(chunk):
        model.text_chunk = chunk
        for p in prompts.parallel_parameters():
            p.grad = None
        mixed, parallel = prompts.view(prompts.mixed(0.5)), prompts.view(prompts.parallel_values())
        logits = mixed.logits(images)
        text = parallel.text_features(None, parallel.image_features(images))
        (logits.float().logsumexp(-1).sum() + text.float().square().mean()).backward()
        return logits.detach(), text.detach(), {i: p.grad.clone() for i, p in enumerate(prompts.parallel_parameters())
                                                if p.grad is not None}

    logits, text, grads = step(0)
    chunked_logits, chunked_text, chunked_grads = step(CHUNK)
    assert torch.equal(chunked_logits, logits) and torch.equal(chunked_text, text)
    assert_close_grads(chunked_grads, grads)


@pytest.mark.parametrize("host", ["CoOp", "MaPLe", "CoCoOp"])
def test_chunked_pass_under_autocast_recomputes_in_the_same_precision(host):
    """bf16 autocast on the CPU: the recomputed chunks must have the dtypes of the forward pass (the checkpoint
    would raise otherwise), and values and gradients match the unchunked pass."""
    model = build_host(host, classnames=CLASSNAMES)
    images, labels = random_images(2), torch.tensor([3, 10])

    def step(chunk):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return host_step(model, chunk, images, labels)

    logits, _, grads = step(0)
    chunked_logits, _, chunked_grads = step(CHUNK)
    assert logits.dtype == torch.bfloat16 and torch.equal(chunked_logits, logits)
    for name, grad in grads.items():  # bf16 activations: the gradients round on a coarser grid
        torch.testing.assert_close(chunked_grads[name], grad, rtol=2e-2, atol=2e-2 * grad.abs().max().item())


def count_recomputed_chunks(monkeypatch):
    calls = []
    real = text_chunks.checkpoint

    def counting(*args, **kwargs):
        calls.append(args[1].shape[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(text_chunks, "checkpoint", counting)
    return calls


def test_the_default_chunks_only_above_its_size(monkeypatch):
    calls = count_recomputed_chunks(monkeypatch)
    assert host_cfg("CoOp").MODEL.TEXT_CHUNK == 128
    small = build_host("CoOp", classnames=CLASSNAMES)  # 12 classes: one call, as before
    small.loss(random_images(2), torch.tensor([0, 1])).total.backward()
    assert small.text_chunk == 128 and calls == []
    large = build_host("CoOp", classnames=[f"shape {i}" for i in range(300)])
    large.loss(random_images(2), torch.tensor([0, 299])).total.backward()
    assert calls == [100, 100, 100]
    with torch.no_grad():  # evaluation: chunks too, with nothing to recompute
        assert large.encode_text().shape[0] == 300 and calls == [100, 100, 100]


def test_reference_parity_keeps_one_call_and_bad_sizes_are_refused():
    assert text_chunk(host_cfg("CoOp", "MODEL.TEXT_CHUNK", 64)) == 64
    assert text_chunk(host_cfg("CoOp", "MODEL.TEXT_CHUNK", 64, "MODEL.REFERENCE_PARITY", True)) == 0
    with pytest.raises(ConfigError, match="MODEL.TEXT_CHUNK must be a whole number"):
        text_chunk(host_cfg("CoOp", "MODEL.TEXT_CHUNK", -1))


def test_the_chunk_size_is_not_part_of_a_runs_identity():
    """Finished runs stay finished: the key is new, and it changes no feature (only the rounding of gradients)."""
    assert config_hash(host_cfg("CoOp", "MODEL.TEXT_CHUNK", 16)) == config_hash(host_cfg("CoOp"))
    assert config_hash(host_cfg("CoOp", "MODEL.REFERENCE_PARITY", True)) != config_hash(host_cfg("CoOp"))


def test_promptkd_teacher_text_tower_is_chunked_too():
    model = build_host("PromptKD", "MODEL.TEXT_CHUNK", 7, classnames=CLASSNAMES)
    assert model.teacher.text_encoder.chunk_size == model.text_encoder.chunk_size == 7


class LargestTensor(TorchDispatchMode):
    """The largest number of elements of any tensor an operation returns."""

    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for tensor in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(tensor, torch.Tensor):
                self.largest = max(self.largest, tensor.numel())
        return out


@pytest.mark.parametrize("grad", [False, True])
def test_cocoop_never_holds_every_images_prompts(grad):
    """CoCoOp's prompts depend on the image: B x C of them. Its test batch (and its training step) builds and
    encodes them chunk by chunk across the images, so no tensor holds more than one chunk's 77 positions."""
    num_classes, batch, chunk = 40, 6, 8
    model = build_host("CoCoOp", "MODEL.TEXT_CHUNK", chunk, classnames=[f"shape {i}" for i in range(num_classes)])
    width = model.text_encoder.ln_final.weight.shape[0]
    images = random_images(batch)
    with torch.set_grad_enabled(grad):
        features = model.encode_image(images)
        with LargestTensor() as probe:
            text = model.encode_text(None, features)
            if grad:
                text.float().sum().backward()
    assert text.shape[:2] == (batch, num_classes)
    assert probe.largest == chunk * 77 * width  # one chunk's prompt embeddings

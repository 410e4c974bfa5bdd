"""Memory of one training step of every host, and of DPC over it, at ViT-B/16 size, counted without a GPU.

    python -m tools.bench.memory [--hosts CoOp MaPLe ...] [--classes 100 397 1000] [--chunk 128]

Each host is built as its trainer builds it, from its paper config (``paper_configs["base2new"]``, the batch size
included), on PyTorch's ``meta`` device: the real shapes and dtypes (fp16, as on a GPU), random weights, no storage
and no arithmetic. Per host, class count, and text chunking (``MODEL.TEXT_CHUNK`` 0 = "before", ``--chunk`` =
"after") it counts
- weights: every parameter and buffer (the class prompts' token embeddings grow with the classes);
- trained: gradients and SGD momentum of the trained tensors;
- saved: the bytes autograd keeps from the forward pass for the backward (``saved_tensors_hooks``, each tensor
  once), plus what the chunks' recomputation keeps (their inputs);
- peak: weights + trained + saved + the largest chunk's recomputed activations (one chunk at a time in the
  backward), the high-water mark of the step by the count.
The text towers run all 77 positions, as the references do (meta tensors cannot say where the last end token is;
the default mode runs fewer, so the text figures are upper bounds for it); on the meta device attention takes
PyTorch's reference path, which keeps the attention matrices (CUDA's fused kernels do not), another upper bound.
Add the CUDA context (about 0.5 GB) and the allocator's slack. DPC's row is its stage-2 step over the host: the
graph ``DPC.dhno_loss`` builds for P' (4 anchors with 8 negatives each against the classes present, and with
``HOST_LOSS_WEIGHT`` > 0 the host's loss on the anchors), with a two-way cross-entropy standing in for its
symmetric InfoNCE (the same features, so the same activations; a few bytes of loss arithmetic differ).
"""
import argparse
import contextlib
from types import SimpleNamespace

import clip
import torch
import torch.nn.functional as F

from tools.bench.clip_shapes import VIT_B16, VIT_L14
from trainers.dpc.prompts import DualPrompts
from trainers.engine import TRAINER_REGISTRY
from trainers.engine.config import build_cfg
from trainers.host_api.host_trainer import host_model_class
from trainers.host_api.interface import PROMPT_LEARNER, build_host
from trainers.hosts.parts.promptkd_teacher import PromptKDTeacher, freeze
from trainers.hosts.promptkd import PromptKDCLIP
from trainers.prompted_clip import text_chunks

HOSTS = ("CoOp", "KgCoOp", "CoCoOp", "MaPLe", "IVLP", "PromptSRC", "PromptKD", "MMRL", "MMRLpp")
GB = 1e9


def nbytes(tensors):
    return sum(t.numel() * t.element_size() for t in tensors)


def random_clip(shape=VIT_B16, fp16=True, device="meta"):
    """The stock CLIP in ``shape`` with random weights on ``device`` (on ``meta``: shapes and dtypes only)."""
    with torch.device(device):
        model = clip.model.CLIP(**shape)
    if fp16:
        clip.model.convert_weights(model)
    return model.eval()


def host_config(host):
    paper = TRAINER_REGISTRY.get(host).paper_configs["base2new"]
    return build_cfg([f"configs/trainers/{host}/{paper}.yaml"], ["DATASET.NAME", "ImageNet"], trainer=host)


def build_bench_host(host, num_classes, clip_shape=VIT_B16, teacher_shape=VIT_L14, fp16=True, device="meta"):
    """``host`` at its paper settings for ``num_classes`` generated classes, and its batch size. PromptKD's teacher
    (a PromptSRC model on ViT-L/14) is built in place of the trained run it would load. On the meta device the text
    towers run all 77 positions (see the module doc)."""
    cfg = host_config(host)
    classnames = [f"class number {i}" for i in range(num_classes)]
    if host == "PromptKD":
        node = cfg.TRAINER.PROMPTKD
        design = SimpleNamespace(N_CTX_TEXT=node.N_CTX_TEXT, N_CTX_VISION=node.N_CTX_VISION, CTX_INIT=node.CTX_INIT,
                                 PROMPT_DEPTH_TEXT=node.PROMPT_DEPTH_TEXT, PROMPT_DEPTH_VISION=node.PROMPT_DEPTH_VISION,
                                 ROUND_PROMPTS_FP16=False)
        with contextlib.redirect_stdout(None):
            teacher_clip = random_clip(teacher_shape, fp16, device)
            teacher = freeze(PromptKDTeacher(design, classnames, teacher_clip))
            teacher.embed_dim, teacher.run_id = teacher_clip.text_projection.shape[1], None
            model = PromptKDCLIP(node, classnames, random_clip(clip_shape, fp16, device), teacher)
        for name, param in model.named_parameters():
            param.requires_grad_(name.startswith(PROMPT_LEARNER + "."))
    else:
        with contextlib.redirect_stdout(None):
            model = build_host(host_model_class(host), cfg, classnames, random_clip(clip_shape, fp16, device))
    model.reference_parity = device == "meta"
    # KgCoOp's and PromptSRC's frozen text targets are encoded once, without a graph, outside autocast (which the
    # meta device cannot enter): here they are random rows of their shape, which changes no memory figure of a step.
    embed_dim = model.text_encoder.text_projection.shape[1]
    if hasattr(model, "_handcrafted"):
        model._handcrafted = torch.randn(num_classes, embed_dim, device=device).to(model.dtype)
        model._handcrafted_parity = model.reference_parity  # what they were "computed" under: not again
    if hasattr(model, "_text_targets"):
        model._text_targets = torch.randn(num_classes, embed_dim, device=device)
    return model, cfg.DATALOADER.TRAIN_X.BATCH_SIZE


class Counter:
    """Bytes autograd saves while it is active, and what the text chunks keep and recompute."""

    def __init__(self):
        self.saved = 0
        self.largest_recompute = 0
        self._seen = {}

    def _pack(self, tensor):
        # Meta tensors have no storage to tell views apart: each saved tensor counts once, by its id. The counter
        # keeps every tensor it counted (meta tensors take no memory), so that no id is reused within a count:
        # a tensor of a graph that dies before the backward is counted too, an upper bound the same on every run.
        if id(tensor) not in self._seen:
            self._seen[id(tensor)] = tensor
            self.saved += tensor.numel() * tensor.element_size()
        return tensor

    @contextlib.contextmanager
    def counting(self):
        real = text_chunks.checkpoint

        def checkpoint(function, *args, **kwargs):
            # A chunk keeps its inputs; its activations come back, one chunk at a time, in the backward.
            self.saved += nbytes(a for a in args[:2] if isinstance(a, torch.Tensor))
            inner = Counter()
            with torch.autograd.graph.saved_tensors_hooks(inner._pack, lambda t: t):
                function(*args)
            self.largest_recompute = max(self.largest_recompute, inner.saved)
            return real(function, *args, **kwargs)

        text_chunks.checkpoint = checkpoint
        try:
            with torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t):
                yield self
        finally:
            text_chunks.checkpoint = real


def step_images(model, count):
    size, device = model.image_encoder.visual.input_resolution, model.logit_scale.device
    return torch.randn(count, 3, size, size, device=device).to(model.dtype)


def step_labels(model, count, num_classes):
    """``count`` labels, distinct as far as there are classes."""
    return torch.arange(count, device=model.logit_scale.device) % num_classes


def host_step(model, batch, num_classes):
    """The host's own training loss on ``batch`` images (labels spread over the classes)."""
    images, labels = step_images(model, batch), step_labels(model, batch, num_classes)
    return lambda: model.loss(images, labels)


def dpc_step(model, num_classes, anchors=4, negatives=8, host_loss_weight=0.0):
    """DPC's stage-2 forward over the host, as ``DPC.dhno_loss`` computes it for P' (see the module doc): M = anchors
    x (1 + negatives) images, one class each, against the classes present; with ``host_loss_weight`` the host's loss
    on the anchors (over all classes) too."""
    prompts = DualPrompts(model)
    for param in model.parameters():
        param.requires_grad_(False)
    for param in prompts.parallel_parameters():
        param.requires_grad_(True)
    count = anchors * (1 + negatives)
    images, classes = step_images(model, count), step_labels(model, count, num_classes)

    def step():
        parallel = prompts.view(prompts.parallel_values())
        logits = parallel.logits(images, classes)
        loss = F.cross_entropy(logits, classes) + F.cross_entropy(logits.t(), classes)
        if host_loss_weight > 0:
            loss = loss + host_loss_weight * model.loss(images[:anchors], classes[:anchors]).total
        return loss

    return step, prompts.parallel_parameters()


def count(model, step, trained):
    counter = Counter()
    with counter.counting():
        step()
    weights = nbytes(model.parameters()) + nbytes(model.buffers())
    optimiser = 2 * nbytes(trained)  # gradients and SGD momentum, in each tensor's dtype
    return {"weights": weights, "trained": optimiser, "saved": counter.saved,
            "peak": weights + optimiser + counter.saved + counter.largest_recompute}


def measure(host, num_classes, chunk=None, dpc=False, host_loss_weight=0.0, clip_shape=VIT_B16, teacher_shape=VIT_L14):
    model, batch = build_bench_host(host, num_classes, clip_shape, teacher_shape)
    if chunk is not None:  # None: MODEL.TEXT_CHUNK as the config has it
        model.text_chunk = chunk
    if dpc:
        step, trained = dpc_step(model, num_classes, host_loss_weight=host_loss_weight)
    else:
        step, trained = host_step(model, batch, num_classes), [p for p in model.parameters() if p.requires_grad]
    return {"batch": batch, **count(model, step, trained)}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tools.bench.memory", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", nargs="+", default=list(HOSTS), choices=HOSTS)
    parser.add_argument("--classes", nargs="+", type=int, default=[100, 397, 1000])
    parser.add_argument("--chunk", type=int, default=128, help="MODEL.TEXT_CHUNK after (default: the default)")
    parser.add_argument("--no-dpc", action="store_true", help="hosts only")
    parser.add_argument("--dpc-host-loss-weight", type=float, default=0.0, help="TRAINER.DPC.HOST_LOSS_WEIGHT")
    args = parser.parse_args(argv)
    print("GB (1e9 bytes), fp16, ViT-B/16, all 77 text positions; before = MODEL.TEXT_CHUNK 0, after = "
          f"{args.chunk}")
    print(f"| step | batch | classes | weights | grads + momentum (MB) | saved before | saved after | peak before | "
          f"peak after |\n|{'---|' * 9}")
    for host in args.hosts:
        for dpc in (False,) if args.no_dpc else (False, True):
            for num_classes in args.classes:
                before, after = (measure(host, num_classes, chunk, dpc, args.dpc_host_loss_weight)
                                 for chunk in (0, args.chunk))
                name = f"DPC over {host}" if dpc else host
                batch = "4 x 9" if dpc else after["batch"]
                print(f"| {name} | {batch} | {num_classes} | {after['weights'] / GB:.2f} | "
                      f"{after['trained'] / 1e6:.1f} | {before['saved'] / GB:.2f} | {after['saved'] / GB:.2f} | "
                      f"{before['peak'] / GB:.2f} | {after['peak'] / GB:.2f} |", flush=True)


if __name__ == "__main__":
    main()

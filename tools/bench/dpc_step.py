"""DPC's training step against its host's (CoOp) on the same number of images, side by side, in one run.

    python -m tools.bench.dpc_step                        # tiny CLIP on the CPU: timings, FLOPs, breakdown
    python -m tools.bench.dpc_step --vit-b16 --steps 30   # ViT-B/16-sized random weights (use a GPU for timings)
    python -m tools.bench.dpc_step --vit-b16 --flops-only # the FLOP ratio at ViT-B/16 size (machine-independent)
    python -m tools.bench.dpc_step --pipeline             # wall time of a small base-to-new table, serially

A DPC step on B anchors contrasts M = B + #negatives images; the CoOp step trains on a batch of M images (the
mean M of the DPC steps), so the ratio is the cost of DPC's extra work (scoring with the frozen prompt, choosing
negatives, loading their images) per image trained on. A step is what ``run_epoch`` does per batch: the training
loader's next item (for DPC its batch and the next one) and ``forward_backward``. What makes the numbers trustworthy:
- threads are pinned (``--threads``, default 1) before anything runs, so the two trainers never oversubscribe;
- the two steps alternate (A, B, A, B, ...), so a load change on the machine hits both; median and min are shown;
- FLOPs (forward and backward, ``torch.utils.flop_counter.FlopCounterMode``) are counted for a DPC step and a
  CoOp step on exactly that step's M images: a ratio no machine load can distort;
- the breakdown times the functions the DPC step calls (each synchronised) and shows the rest, so the stages add
  up to the step.
"""
import argparse
import os
import statistics
import tempfile
import time

import torch
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode

import datasets  # noqa: F401  (registers the readers)
import train
import trainers.dpc.negative_pool as negative_pool_module
import trainers.dpc.trainer as dpc_trainer_module
from tools.bench.clip_shapes import VIT_B16
from trainers.prompted_clip import save_tiny_clip


def write_random_dataset(root, num_classes, per_class, size, seed=0):
    """An ImageFolder dataset of noise images named "object N" (what they show does not matter here)."""
    generator = torch.Generator().manual_seed(seed)
    for c in range(num_classes):
        folder = os.path.join(root, "bench", f"object_{c}")
        os.makedirs(folder, exist_ok=True)
        for i in range(per_class):
            pixels = (torch.rand(size, size, 3, generator=generator) * 255).to(torch.uint8).numpy()
            Image.fromarray(pixels).save(os.path.join(folder, f"{i}.jpg"), quality=90)


def build(trainer, root, clip_path, out, config, *opts):
    yaml = os.path.join(root, "bench.yaml")
    with open(yaml, "w") as f:
        f.write('DATASET:\n  NAME: "ImageFolder"\n  FOLDER: "bench"\n')
    argv = ["--root", root, "--seed", "1", "--trainer", trainer, "--dataset-config-file", yaml,
            "--config-file", config, "--output-dir", out, "--no-train",
            "MODEL.BACKBONE.NAME", clip_path, "DATASET.NUM_SHOTS", "16", "DATASET.SUBSAMPLE_CLASSES", "base",
            "TRAIN.PRINT_FREQ", "1000", *[str(o) for o in opts]]
    trainer = train.main(train.build_parser().parse_args(argv))
    trainer.set_model_mode("train")
    trainer.batch_idx, trainer.num_batches = 0, 10 ** 9  # never step the scheduler
    return trainer


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


class Steps:
    """One training step at a time, as ``run_epoch`` takes it (a new epoch's start-up is not a step)."""

    def __init__(self, trainer):
        self.trainer = trainer
        self.iterator = iter(trainer.train_loader_x)

    def next_item(self):
        item = next(self.iterator, None)
        if item is None:
            self.iterator = iter(self.trainer.train_loader_x)
            item = next(self.iterator)
        return item

    def timed(self):
        synchronize(self.trainer.device)
        start = time.perf_counter()
        summary = self.trainer.forward_backward(self.next_item())
        synchronize(self.trainer.device)
        return time.perf_counter() - start, summary


def interleaved(dpc_steps, coop_steps, steps, warmup):
    dpc, coop = [], []
    for i in range(warmup + steps):
        d, c = dpc_steps.timed(), coop_steps.timed()
        if i >= warmup:
            dpc.append(d)
            coop.append(c[0])
    return dpc, coop


def step_flops(fn):
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def flop_ratios(dpc, coop, steps):
    """FLOPs of DPC steps (``forward_backward``, which also scores the next batch) and of CoOp steps on each DPC
    step's own M images."""
    ratios, images = [], []
    dpc_steps = Steps(dpc)
    dpc_steps.timed()  # an epoch's first step also scores its own batch: not a typical step
    contrasted = []
    dhno_loss = dpc.dhno_loss
    dpc.dhno_loss = lambda images, labels, *args, **kwargs: (contrasted.append((images, labels))
                                                               or dhno_loss(images, labels, *args, **kwargs))
    try:
        for _ in range(steps):
            dpc_flops = step_flops(lambda: dpc.forward_backward(dpc_steps.next_item()))
            batch, labels = contrasted[-1]
            coop_flops = step_flops(lambda: coop.forward_backward({"img": batch.cpu(), "label": labels.cpu()}))
            ratios.append(dpc_flops / coop_flops)
            images.append(len(labels))
    finally:
        del dpc.dhno_loss
    return ratios, images


class Breakdown:
    """Wall time per DPC step of the functions it calls (each call synchronised), where they are looked up."""

    def __init__(self, trainer):
        self.device = trainer.device
        self.seconds = {}
        self._restore = []
        loader = trainer.train_loader_x
        self._wrap(loader, "loader", "load anchors (training loader)", iterable=True)
        self._wrap(trainer, "score", "score with P")
        self._wrap(dpc_trainer_module, "select_negatives", "choose negatives")
        self._wrap(trainer.negative_pool, "request", "request negative images")
        self._wrap(negative_pool_module._PendingImages, "collect", "wait for negative images")
        self._wrap(trainer, "dhno_loss", "loss forward (DHNO + host term)")
        self._wrap(trainer, "backward_and_update", "backward and update")

    def _timed(self, label, function):
        def timed(*args, **kwargs):
            synchronize(self.device)
            start = time.perf_counter()
            result = function(*args, **kwargs)
            synchronize(self.device)
            self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - start
            return result
        return timed

    def _wrap(self, owner, name, label, iterable=False):
        original = getattr(owner, name)
        self._restore.append((owner, name, owner.__dict__.get(name)))
        setattr(owner, name, _TimedIterable(original, self._timed(label, next)) if iterable
                else self._timed(label, original))

    def close(self):
        for owner, name, value in reversed(self._restore):
            if value is None:
                delattr(owner, name)
            else:
                setattr(owner, name, value)

    def report(self, steps, total):
        print(f"DPC step breakdown (ms per step, each stage synchronised; {steps} steps):")
        for label, seconds in self.seconds.items():
            print(f"  {label:36s} {1000 * seconds / steps:8.2f}")
        rest = total - sum(self.seconds.values())
        print(f"  {'rest (Python, collation, the step loop)':36s} {1000 * rest / steps:8.2f}")
        print(f"  {'= the step':36s} {1000 * total / steps:8.2f}")


class _TimedIterable:
    def __init__(self, iterable, timed_next):
        self.iterable, self.timed_next = iterable, timed_next

    def __len__(self):
        return len(self.iterable)

    def __getattr__(self, name):
        return getattr(self.iterable, name)

    def __iter__(self):
        iterator = iter(self.iterable)
        while True:
            try:
                yield self.timed_next(iterator)
            except StopIteration:
                return


def breakdown(dpc, steps):
    timer = Breakdown(dpc)
    runner = Steps(dpc)
    runner.timed()  # an epoch's first step (which also scores its own batch) is not a typical step
    timer.seconds.clear()
    total = sum(runner.timed()[0] for _ in range(steps))
    timer.close()
    timer.report(steps, total)


def probe_steps(dpc, count):
    """A few DPC steps' batches with their negatives chosen: how many images a step trains on."""
    steps = Steps(dpc)
    probes = [dpc.choose_negatives(dpc.score_batch(steps.next_item()[0])) for _ in range(count)]
    for ahead in probes:
        ahead.collect()
    return [ahead.batch for ahead in probes], [ahead.negative_classes for ahead in probes]


def summary(label, seconds):
    return f"{label}: median {1000 * statistics.median(seconds):8.2f} ms, min {1000 * min(seconds):8.2f} ms"


def build_pair(tmp, vit_b16=False, classes=40, workers=0, prec="fp16", host_loss_weight=1.0):
    """DPC over CoOp and CoOp on a noise-image dataset in ``tmp``, and M (the CoOp batch size)."""
    size = 224 if vit_b16 else 32
    clip_path = save_tiny_clip(os.path.join(tmp, "clip.pt"), **(VIT_B16 if vit_b16 else {}))
    write_random_dataset(tmp, classes, per_class=20, size=size)
    common = ("DATALOADER.NUM_WORKERS", workers, "TRAINER.COOP.PREC", prec,
              "INPUT.SIZE", f"({size}, {size})", "TRAINER.COOP.CTX_INIT", "a photo of a")
    # DPC over CoOp (as vit_b16_ctxv1 builds it) from CoOp's initial prompt: P = P' = ctx before tuning.
    dpc = build("DPC", tmp, clip_path, os.path.join(tmp, "dpc"), "configs/trainers/DPC/vit_b16_ep20_batch4.yaml",
                *common, "TRAINER.DPC.HOST", "CoOp", "TRAINER.DPC.HOST_LOSS_WEIGHT", host_loss_weight)
    dpc.stage1_loaded = True
    dpc.negative_pool = dpc.build_negative_pool()
    m = round(statistics.mean(len(batch.labels) + len(negatives) for batch, negatives in zip(*probe_steps(dpc, 8))))
    coop = build("CoOp", tmp, clip_path, os.path.join(tmp, "coop"), "configs/trainers/CoOp/vit_b16_ctxv1.yaml",
                 *common, "DATALOADER.TRAIN_X.BATCH_SIZE", m)
    return dpc, coop, m


def step_benchmark(args):
    with tempfile.TemporaryDirectory() as tmp:
        dpc, coop, m = build_pair(tmp, args.vit_b16, args.classes, args.workers, args.prec, args.host_loss_weight)
        try:
            compare(args, dpc, coop, m)
        finally:
            dpc.negative_pool.close()


def compare(args, dpc, coop, m):
    """FLOP ratio; unless --flops-only, interleaved timings and the breakdown."""
    print(f"\ndevice {dpc.device}, {torch.get_num_threads()} thread(s), "
          f"{'ViT-B/16-sized' if args.vit_b16 else 'tiny'} CLIP, {args.classes // 2} base classes, "
          f"HOST_LOSS_WEIGHT {args.host_loss_weight}")
    ratios, images = flop_ratios(dpc, coop, args.flop_steps)
    print(f"FLOP ratio DPC / CoOp on each DPC step's own M images (forward + backward): "
          f"median {statistics.median(ratios):.3f}, range {min(ratios):.3f}-{max(ratios):.3f} "
          f"(M = {min(images)}-{max(images)})")
    if args.flops_only:
        return
    dpc_times, coop_times = interleaved(Steps(dpc), Steps(coop), args.steps, args.warmup)
    mean_m = statistics.mean(4 + 4 * s["negatives"] for _, s in dpc_times)
    dpc_s = [t for t, _ in dpc_times]
    print(f"seconds per training step, interleaved DPC, CoOp, DPC, ... ({args.steps} each after {args.warmup}):")
    print(summary(f"  DPC  (4 anchors + negatives = {mean_m:.1f} images on average)", dpc_s))
    print(summary(f"  CoOp (batch of {m} images)                             ", coop_times))
    print(f"ratio DPC / CoOp: median {statistics.median(dpc_s) / statistics.median(coop_times):.3f}, "
          f"min {min(dpc_s) / min(coop_times):.3f}")
    if not args.no_breakdown:
        breakdown(dpc, args.steps)


def pipeline_benchmark(args):
    """Wall time of the demo's base-to-new table (zero-shot, CoOp, CoOp+DPC; base and new), serially, fresh."""
    from tools.demo import cli as demo

    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out")
        start = time.perf_counter()
        demo.main(["--root", args.root or os.path.join(tmp, "data"), "--out", out, "--seeds", *map(str, args.seeds),
                   "--threads", str(args.threads)])
        print(f"\nbase-to-new table of the demo world, seeds {args.seeds}, serial, fresh output: "
              f"{time.perf_counter() - start:.1f} s")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vit-b16", action="store_true", help="ViT-B/16-sized random weights instead of a tiny CLIP")
    parser.add_argument("--classes", type=int, default=40, help="classes in the benchmark dataset (half are base)")
    parser.add_argument("--steps", type=int, default=20, help="timed steps of each trainer")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--flop-steps", type=int, default=3, help="steps whose FLOPs are counted")
    parser.add_argument("--flops-only", action="store_true", help="count FLOPs only (fast enough on a CPU at ViT-B/16)")
    parser.add_argument("--workers", type=int, default=0, help="DATALOADER.NUM_WORKERS")
    parser.add_argument("--threads", type=int, default=1, help="torch threads, pinned before anything runs")
    parser.add_argument("--prec", default="fp16", choices=["fp16", "fp32", "amp"], help="on CUDA; the CPU uses fp32")
    parser.add_argument("--host-loss-weight", type=float, default=1.0, help="TRAINER.DPC.HOST_LOSS_WEIGHT")
    parser.add_argument("--no-breakdown", action="store_true", help="skip the DPC step's breakdown")
    parser.add_argument("--pipeline", action="store_true", help="time the demo's small base-to-new table instead")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1], help="--pipeline: the seeds")
    parser.add_argument("--root", default="", help="--pipeline: the data root (default: a fresh demo world)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.pipeline:
        pipeline_benchmark(args)
    else:
        step_benchmark(args)


if __name__ == "__main__":
    main()

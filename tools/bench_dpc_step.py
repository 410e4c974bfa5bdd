"""Seconds per DPC training step against a plain CoOp step on the same number of images, side by side.

    python -m tools.bench_dpc_step                      # tiny CLIP on the CPU
    python -m tools.bench_dpc_step --vit-b16 --steps 30 # ViT-B/16-sized random weights (use a GPU)

A DPC step on B anchors contrasts M = B + #negatives images; the CoOp step is timed with a batch of M
images, so the ratio is the cost of DPC's extra work (scoring with the frozen prompt, hard-negative
selection, loading negative images) per image trained on. Both run through the real trainers.
"""
import argparse
import os
import statistics
import tempfile
import time

import torch
from PIL import Image

import datasets  # noqa: F401  (registers the readers)
import train
import trainers.dpc.trainer as dpc_trainer_module
from trainers.dpc.steps import PreparedStep
from trainers.prompted_clip import save_tiny_clip

VIT_B16 = dict(embed_dim=512, image_resolution=224, vision_layers=12, vision_width=768, vision_patch_size=16,
               transformer_width=512, transformer_heads=8, transformer_layers=12)


def write_random_dataset(root, num_classes, per_class, size, seed=0):
    """An ImageFolder dataset of noise images named "object N" (what they show does not matter here)."""
    generator = torch.Generator().manual_seed(seed)
    for c in range(num_classes):
        folder = os.path.join(root, "bench", f"object_{c}")
        os.makedirs(folder, exist_ok=True)
        for i in range(per_class):
            pixels = (torch.rand(size, size, 3, generator=generator) * 255).to(torch.uint8).numpy()
            Image.fromarray(pixels).save(os.path.join(folder, f"{i}.jpg"), quality=90)


def build(trainer, root, clip_path, out, config, *opts, flags=()):
    yaml = os.path.join(root, "bench.yaml")
    with open(yaml, "w") as f:
        f.write('DATASET:\n  NAME: "ImageFolder"\n  FOLDER: "bench"\n')
    argv = ["--root", root, "--seed", "1", "--trainer", trainer, "--dataset-config-file", yaml,
            "--config-file", config, "--output-dir", out, "--no-train", *flags,
            "MODEL.BACKBONE.NAME", clip_path, "DATASET.NUM_SHOTS", "16", "DATASET.SUBSAMPLE_CLASSES", "base",
            "TRAIN.PRINT_FREQ", "1000", *[str(o) for o in opts]]
    return train.main(train.build_parser().parse_args(argv))


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_steps(trainer, steps, warmup):
    """Seconds per training step as ``run_epoch`` takes it: the training loader's next item (for DPC a prepared
    step, so scoring the next batch and waiting for its negatives count) and ``forward_backward`` on it."""
    trainer.set_model_mode("train")
    trainer.batch_idx, trainer.num_batches = 0, 10 ** 9  # never step the scheduler
    times, iterator, done = [], iter(trainer.train_loader_x), 0
    while len(times) < steps:
        synchronize(trainer.device)
        start = time.perf_counter()
        item = next(iterator, None)
        if item is None:  # a new epoch: its start-up is not a step
            iterator = iter(trainer.train_loader_x)
            continue
        summary = trainer.forward_backward(item)
        synchronize(trainer.device)
        if done >= warmup:
            times.append((time.perf_counter() - start, summary))
        done += 1
    return times


class StageTimer:
    """Wall time of the DPC step's stages (each call synchronised), for ``--breakdown``: the functions a training
    step calls, wrapped where they are looked up."""

    STAGES = ("score", "select_negatives", "collect_negatives", "dhno_loss", "backward_and_update")

    def __init__(self, trainer):
        self.times = {name: [] for name in self.STAGES}
        self.device = trainer.device
        self._restore = []
        self._wrap(trainer, "score")
        self._wrap(dpc_trainer_module, "select_negatives")
        self._wrap(PreparedStep, "collect_negatives")
        self._wrap(trainer, "dhno_loss")
        self._wrap(trainer, "backward_and_update")

    def _wrap(self, owner, name):
        original = getattr(owner, name)

        def timed(*args, **kwargs):
            synchronize(self.device)
            start = time.perf_counter()
            result = original(*args, **kwargs)
            synchronize(self.device)
            self.times[name].append(time.perf_counter() - start)
            return result

        self._restore.append((owner, name, owner.__dict__.get(name)))
        setattr(owner, name, timed)

    def close(self):
        for owner, name, value in reversed(self._restore):
            if value is None:
                delattr(owner, name)
            else:
                setattr(owner, name, value)

    def report(self):
        for name, values in self.times.items():
            if values:
                print(f"  {name:20s} {1000 * statistics.median(values):8.2f} ms")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vit-b16", action="store_true", help="ViT-B/16-sized random weights instead of a tiny CLIP")
    parser.add_argument("--classes", type=int, default=40, help="classes in the benchmark dataset (half are base)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--workers", type=int, default=4, help="DATALOADER.NUM_WORKERS (negative decoding threads)")
    parser.add_argument("--prec", default="fp16", choices=["fp16", "fp32", "amp"], help="on CUDA; the CPU uses fp32")
    parser.add_argument("--breakdown", action="store_true", help="also time the DPC step's stages (adds syncs)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        size = 224 if args.vit_b16 else 32
        clip_path = save_tiny_clip(os.path.join(tmp, "clip.pt"), **(VIT_B16 if args.vit_b16 else {}))
        write_random_dataset(tmp, args.classes, per_class=20, size=size)
        common = ("DATALOADER.NUM_WORKERS", args.workers, "TRAINER.COOP.PREC", args.prec,
                  "INPUT.SIZE", f"({size}, {size})")

        # DPC over CoOp (as vit_b16_ctxv1 builds it) from CoOp's initial prompt: P = P' = ctx before tuning.
        dpc = build("DPC", tmp, clip_path, os.path.join(tmp, "dpc"), "configs/trainers/DPC/vit_b16_ep20_batch4.yaml",
                    *common, "TRAINER.DPC.HOST", "CoOp", "TRAINER.COOP.CTX_INIT", "a photo of a")
        dpc.stage1_loaded = True
        dpc.negative_pool = dpc.build_negative_pool()
        dpc_times = time_steps(dpc, args.steps, args.warmup)
        if args.breakdown:
            timer = StageTimer(dpc)
            time_steps(dpc, args.steps, 0)
            timer.close()
        images_per_step = statistics.mean(4 * (1 + s["negatives"]) for _, s in dpc_times)
        dpc.negative_pool.close()

        m = max(1, round(images_per_step))
        coop = build("CoOp", tmp, clip_path, os.path.join(tmp, "coop"), "configs/trainers/CoOp/vit_b16_ctxv1.yaml",
                     *common, "DATALOADER.TRAIN_X.BATCH_SIZE", m)
        coop_times = time_steps(coop, args.steps, args.warmup)

    dpc_s = statistics.median(t for t, _ in dpc_times)
    coop_s = statistics.median(t for t, _ in coop_times)
    print("\n=== seconds per training step (median) ===")
    print(f"device {dpc.device}, {'ViT-B/16-sized' if args.vit_b16 else 'tiny'} CLIP, {args.classes // 2} base classes")
    print(f"DPC  step: batch 4 anchors + negatives = {images_per_step:.1f} images on average: {dpc_s:.4f} s")
    print(f"CoOp step: batch {m} images:                                 {coop_s:.4f} s")
    print(f"ratio DPC / CoOp on the same number of images: {dpc_s / coop_s:.2f}")
    if args.breakdown:
        print("DPC stages (median, synchronised):")
        timer.report()


if __name__ == "__main__":
    main()

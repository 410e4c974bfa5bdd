"""A real CPU run at ImageNet's class count: a few training steps of a host on a full-size ViT-B/16 CLIP with random
weights (fp32) and generated class names, printing the process's peak resident memory.

    python -m tools.bench.rss_run --host CoOp --classes 1000 --steps 3 --chunk 0     # before: one text call
    python -m tools.bench.rss_run --host CoOp --classes 1000 --steps 3               # after: MODEL.TEXT_CHUNK 128

The host is built as its trainer builds it (``build_host``, its paper config), and each step is the host's own
loss, backward and an SGD step on random images and labels. Run the unchunked case under a memory cap (e.g.
``prlimit --as=$((14 * 1024**3))``): an allocation the cap refuses is reported as such, with the peak so far.
"""
import argparse
import contextlib
import resource
import sys
import time

import clip
import torch

from tools.bench.clip_shapes import VIT_B16
from tools.bench.memory import host_config
from trainers.host_api.host_trainer import host_model_class
from trainers.host_api.interface import build_host


def peak_rss_gb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9  # Linux reports KiB


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tools.bench.rss_run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="CoOp")
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch", type=int, default=4, help="training images per step")
    parser.add_argument("--chunk", type=int, default=128, help="MODEL.TEXT_CHUNK (0 = all classes at once)")
    parser.add_argument("--all-positions", action="store_true",
                        help="run the text tower on all 77 positions, as the references do (MODEL.REFERENCE_PARITY)")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    clip_model = clip.model.CLIP(**VIT_B16).float().eval()  # random weights in the real shapes
    cfg = host_config(args.host)
    classnames = [f"generated class {i}" for i in range(args.classes)]
    with contextlib.redirect_stdout(None):
        model = build_host(host_model_class(args.host), cfg, classnames, clip_model)
    model.reference_parity = args.all_positions
    model.text_chunk = args.chunk  # after the parity switch: this run chunks as asked in either mode
    model.train()
    trained = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.SGD(trained, lr=0.002, momentum=0.9)
    built = peak_rss_gb()
    positions = "all 77 positions" if args.all_positions else "cut after the last end token"
    print(f"{args.host}, {args.classes} classes, batch {args.batch}, MODEL.TEXT_CHUNK {args.chunk}, text {positions}: "
          f"peak RSS after building {built:.2f} GB", flush=True)
    for step in range(args.steps):
        start = time.perf_counter()
        images = torch.randn(args.batch, 3, 224, 224)
        labels = torch.randint(args.classes, (args.batch,))
        try:
            loss = model.loss(images, labels).total
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        except (MemoryError, RuntimeError) as err:
            if "memory" not in str(err).lower():
                raise
            print(f"step {step + 1}: out of memory ({' '.join(str(err).split())[:120]}); peak RSS so far "
                  f"{peak_rss_gb():.2f} GB: the run exceeded the memory cap", flush=True)
            return 1
        print(f"step {step + 1}: loss {loss.item():.4f}, {time.perf_counter() - start:.1f} s, peak RSS "
              f"{peak_rss_gb():.2f} GB", flush=True)
    print(f"peak RSS {peak_rss_gb():.2f} GB ({peak_rss_gb() - built:.2f} GB above the built model)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

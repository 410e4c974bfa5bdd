"""The time cost of class-chunked text encoding: a host's training text pass (forward and backward of all classes'
text features) at ViT-B/16 size, chunked and unchunked, timed alternately in one process with pinned threads.

    python -m tools.bench.text_chunk_time [--host CoOp] [--classes 256] [--chunk 128] [--rounds 5] [--threads 1]
    python -m tools.bench.text_chunk_time --flops [--host CoOp] [--classes 1000]     # FLOPs, no timing

Random weights in the real shapes (fp32 on the CPU), generated class names, the host's paper prompts. Prints the
median and min of each and their ratios (chunked / unchunked). At or below ``--chunk`` classes the two are the
same code path (one call), so only a count above it is worth timing. ``--flops`` counts the floating-point
operations of the two passes instead (``torch.utils.flop_counter``, on the meta device at fp16, all 77 positions):
a ratio that does not depend on the machine's load.
"""
import argparse
import contextlib
import statistics
import time

import clip
import torch

from tools.bench.clip_shapes import VIT_B16
from tools.bench.memory import build_bench_host, host_config
from trainers.host_api.host_trainer import host_model_class
from trainers.host_api.interface import build_host


def text_pass(model, chunk):
    """Seconds for the forward and backward pass of all classes' text features with ``chunk`` classes per call."""
    model.text_chunk = chunk
    model.zero_grad(set_to_none=True)
    start = time.perf_counter()
    model.encode_text().float().square().sum().backward()
    return time.perf_counter() - start


def text_pass_flops(host, num_classes, chunk):
    from torch.utils.flop_counter import FlopCounterMode

    model, _ = build_bench_host(host, num_classes)
    model.text_chunk = chunk
    with FlopCounterMode(display=False) as counter:
        model.encode_text().float().square().sum().backward()
    return counter.get_total_flops()


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tools.bench.text_chunk_time", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="CoOp", help="a host whose text encoding does not need the image")
    parser.add_argument("--classes", type=int, default=256)
    parser.add_argument("--chunk", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--flops", action="store_true", help="count FLOPs (meta device) instead of timing")
    args = parser.parse_args(argv)
    if args.flops:
        whole, chunked = (text_pass_flops(args.host, args.classes, chunk) for chunk in (0, args.chunk))
        print(f"{args.host} text pass, {args.classes} classes, ViT-B/16, 77 positions: {whole / 1e12:.2f} TFLOP "
              f"unchunked, {chunked / 1e12:.2f} TFLOP in chunks of {args.chunk}: ratio {chunked / whole:.3f}")
        return
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    clip_model = clip.model.CLIP(**VIT_B16).float().eval()
    classnames = [f"generated class {i}" for i in range(args.classes)]
    with contextlib.redirect_stdout(None):
        model = build_host(host_model_class(args.host), host_config(args.host), classnames, clip_model)
    if model.text_depends_on_image:
        parser.error(f"{args.host}'s text features depend on the image: time a host whose do not")
    text_pass(model, 0)  # warm-up
    times = {0: [], args.chunk: []}
    for _ in range(args.rounds):
        for chunk in times:
            times[chunk].append(text_pass(model, chunk))
    whole, chunked = times[0], times[args.chunk]
    print(f"{args.host} text pass, {args.classes} classes, ViT-B/16 fp32, {args.threads} thread(s), {args.rounds} "
          f"alternating rounds")
    print(f"unchunked: median {statistics.median(whole):.2f} s, min {min(whole):.2f} s")
    print(f"chunks of {args.chunk}: median {statistics.median(chunked):.2f} s, min {min(chunked):.2f} s")
    print(f"ratio chunked / unchunked: median {statistics.median(chunked) / statistics.median(whole):.3f}, "
          f"min {min(chunked) / min(whole):.3f}")


if __name__ == "__main__":
    main()

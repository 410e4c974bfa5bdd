"""The GPU check: one command, at most about 8 minutes on one GPU, printing ratios each measured side by side in
this one run. Without CUDA it says so in one line and exits 0.

    python -m tools.bench.gpu_check [--skip memory chunk-time dpc-step pipeline]

1. memory: every host's training step at ViT-B/16 size (random weights, fp16, its paper batch) at 1000 classes,
   peak ``torch.cuda.max_memory_allocated`` with ``MODEL.TEXT_CHUNK`` 0 and 128, and their ratio;
2. chunk-time: the CoOp text pass (forward and backward, 1000 classes) chunked / unchunked, alternating rounds;
3. dpc-step: DPC / host step time at ViT-B/16, fp16 and amp (``tools.bench.dpc_step``, its own ratio);
4. pipeline: the executors' small pipeline (16 tiny runs) with ``--jobs-per-gpu`` 1, 2 and 4: wall times and
   throughput relative to 1.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import torch

from tools.bench.memory import HOSTS, build_bench_host, host_step

DPC_STEP_MODULE = "tools.bench.dpc_step"
SECTIONS = ("memory", "chunk-time", "dpc-step", "pipeline")
GB = 1e9


def cuda_peak(host, num_classes, chunk):
    """Peak bytes of one training step (forward, backward) of ``host``, counted from a reset of the peak."""
    model, batch = build_bench_host(host, num_classes, device="cuda")
    model.text_chunk = chunk
    step = host_step(model, batch, num_classes)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    try:
        step().total.backward()
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated()
    except torch.cuda.OutOfMemoryError:
        peak = None
    del model, step
    torch.cuda.empty_cache()
    return before, peak


def check_memory(num_classes=1000, chunk=128):
    print(f"== peak memory of one training step, {num_classes} classes, fp16, ViT-B/16 (GB; weights included)")
    for host in HOSTS:
        (_, whole), (weights, chunked) = (cuda_peak(host, num_classes, c) for c in (0, chunk))
        show = [f"{p / GB:.2f}" if p is not None else "out of memory" for p in (whole, chunked)]
        ratio = f"{chunked / whole:.3f}" if whole and chunked else "-"
        print(f"{host:>10}: TEXT_CHUNK 0 {show[0]}, TEXT_CHUNK {chunk} {show[1]}, ratio {ratio} "
              f"(model {weights / GB:.2f})", flush=True)


def check_chunk_time(num_classes=1000, chunk=128, rounds=5):
    print(f"== CoOp text pass, {num_classes} classes, fp16, forward + backward, {rounds} alternating rounds")
    model, _ = build_bench_host("CoOp", num_classes, device="cuda")
    times = {0: [], chunk: []}

    def text_pass(model, size):
        model.text_chunk = size
        model.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        start = time.perf_counter()
        model.encode_text().float().square().sum().backward()
        torch.cuda.synchronize()
        return time.perf_counter() - start

    text_pass(model, 0), text_pass(model, chunk)  # warm-up
    for _ in range(rounds):
        for size in times:
            times[size].append(text_pass(model, size))
    whole, chunked = statistics.median(times[0]), statistics.median(times[chunk])
    print(f"unchunked {whole * 1e3:.1f} ms, chunks of {chunk} {chunked * 1e3:.1f} ms (medians): ratio "
          f"{chunked / whole:.3f}", flush=True)
    del model
    torch.cuda.empty_cache()


def run(command, timeout):
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        print(f"FAILED ({done.returncode}): {' '.join(command)}\n{done.stdout[-1500:]}{done.stderr[-1500:]}")
    return done, time.perf_counter() - start


def check_dpc_step():
    for prec in ("fp16", "amp"):
        print(f"== DPC / CoOp step time, ViT-B/16, {prec}", flush=True)
        done, _ = run([sys.executable, "-m", DPC_STEP_MODULE, "--vit-b16", "--steps", "20", "--prec", prec,
                       "--workers", "8", "--no-breakdown"], timeout=120)
        print(done.stdout.strip()[-1500:], flush=True)


def check_pipeline():
    from tools.bench.executors import make_two_datasets, pipeline_argv
    from trainers.prompted_clip import save_tiny_clip

    print("== pipeline throughput, 16 tiny runs (two datasets x two seeds, CoOp then DPC, base and new)")
    with tempfile.TemporaryDirectory() as folder:
        root, yamls = make_two_datasets(folder)
        clip_path = save_tiny_clip(os.path.join(folder, "tiny_clip.pt"))
        seconds = {}
        for jobs in (1, 2, 4):
            out = os.path.join(folder, f"jobs{jobs}")
            command = [sys.executable, "-m", "tools.pipeline", *pipeline_argv(root, yamls, out, clip_path),
                       "--executor", "local", "--jobs-per-gpu", str(jobs)]
            done, seconds[jobs] = run(command, timeout=150)
            if done.returncode == 0:
                print(f"--jobs-per-gpu {jobs}: {seconds[jobs]:.1f} s, throughput x{seconds[1] / seconds[jobs]:.2f}",
                      flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tools.bench.gpu_check", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip", nargs="*", default=[], choices=SECTIONS)
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("No CUDA device here: the GPU check did not run (it needs one GPU; nothing to do).")
        return 0
    print(f"GPU check on {torch.cuda.get_device_name()}, torch {torch.__version__}")
    start = time.perf_counter()
    checks = {"memory": check_memory, "chunk-time": check_chunk_time, "dpc-step": check_dpc_step,
              "pipeline": check_pipeline}
    for name, check in checks.items():
        if name not in args.skip:
            check()
    print(f"GPU check done in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

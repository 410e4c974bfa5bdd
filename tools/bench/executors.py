"""Wall time of one small base-to-new pipeline under each executor, side by side, on this machine.

    python -m tools.bench.executors                     # serial, then local with --jobs 2
    python -m tools.bench.executors --slurm -- --slurm-gpus-per-run 0 --slurm-cpus-per-run 1
                                                        # also through the Slurm that squeue reaches

The pipeline is the one the executor tests run: two generated datasets x two seeds, CoOp then DPC (16
train.py runs), the tiny CLIP, one epoch per stage. Its runs are short, so the times measure what an
executor saves or adds around train.py (interpreter start-up, waiting for a slot, queueing), not training.
The results of every executor are checked against the serial ones.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from datasets.shapes import make_shapes_dataset
from trainers.prompted_clip import save_tiny_clip
from trainers.run.paths import REPO_DIR


def make_two_datasets(folder):
    """DATA holding ``shapes_a`` (3 colours x 2 shapes) and ``shapes_b`` (2 x 3) under ``folder``, and a
    dataset yaml for each; returns (DATA, [yaml, yaml])."""
    root = os.path.join(folder, "data")
    make_shapes_dataset(root, folder="shapes_a", images_per_class=6)
    make_shapes_dataset(root, folder="shapes_b", colours=("yellow", "green"),
                        shapes=("circle", "square", "triangle"), images_per_class=6, seed=1)
    yamls = []
    for name in ("shapes_a", "shapes_b"):
        path = os.path.join(folder, f"{name}.yaml")
        with open(path, "w") as f:
            f.write(f'DATASET:\n  NAME: "ImageFolder"\n  FOLDER: "{name}"\n')
        yamls.append(path)
    return root, yamls


def tiny_opts(clip_path, epochs=1):
    return ["MODEL.BACKBONE.NAME", clip_path, "OPTIM.MAX_EPOCH", str(epochs), "TRAIN.PRINT_FREQ", "100"]


def pipeline_argv(root, datasets, out, clip_path, seeds=(1, 2), epochs=1):
    """``python -m tools.pipeline`` arguments: CoOp and DPC on ``datasets`` with the CPU configs, 2 shots."""
    return ["--host", "CoOp", "--root", root, "--out", str(out), "--datasets", *datasets,
            "--seeds", *map(str, seeds), "--shots", "2", "--host-config", "cpu_tiny", "--dpc-config", "cpu_tiny",
            "--opts", *tiny_opts(clip_path, epochs), "--no-progress", "--no-table"]


def accuracies(out):
    found = {}
    for directory, _, files in os.walk(out):
        if "results.json" in files:
            with open(os.path.join(directory, "results.json")) as f:
                found[os.path.relpath(directory, out)] = json.load(f)["accuracy"]
    return found


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--slurm", action="store_true", help="also run through --executor slurm")
    parser.add_argument("slurm_flags", nargs="*", help="after --: more flags for the Slurm run")
    args = parser.parse_args(argv)
    executors = [("serial", []), ("local --jobs 2", ["--executor", "local", "--jobs", "2"])]
    if args.slurm:
        executors.append(("slurm", ["--executor", "slurm", "--slurm-poll-seconds", "1", *args.slurm_flags]))
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as folder:
        root, yamls = make_two_datasets(folder)
        clip = save_tiny_clip(os.path.join(folder, "tiny_clip.pt"))
        times, reference = {}, None
        for name, flags in executors:
            out = os.path.join(folder, name.split()[0])
            command = [sys.executable, "-m", "tools.pipeline", *pipeline_argv(root, yamls, out, clip), *flags]
            start = time.time()
            done = subprocess.run(command, cwd=REPO_DIR, env=env, capture_output=True, text=True)
            times[name] = time.time() - start
            if done.returncode != 0:
                sys.exit(f"{name}: the pipeline failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
            reference = reference or accuracies(out)
            same = "same results" if accuracies(out) == reference else "RESULTS DIFFER from serial"
            print(f"{name:>16}: {times[name]:6.1f} s   speed-up {times['serial'] / times[name]:.2f}   {same}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

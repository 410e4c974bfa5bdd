"""The CPU demo: zero-shot CLIP, CoOp and CoOp+DPC base-to-new on the demo world, then the table.

    python -m tools.demo                     # data in ./data, runs in ./output/demo; a few minutes on 2 cores
    python -m tools.demo --seeds 1 2 3 --out output/demo3
    python -m tools.demo --ablation          # the paper's component ablation (TS, DHNO, WE, DE) on the demo world

The demo world (datasets/demo_world.py) is generated on first use; the tiny CLIP pretrained on it is
shipped in configs/demo/demo_clip.pt (tools/demo/pretrain_clip.py made it), so nothing is downloaded or
pretrained here. Every run is an ordinary ``train.py`` run planned by the pipeline, in the pipeline's
output layout, executed in this process to save interpreter start-ups. Zero-shot CLIP is evaluated once on
the base and the new classes into the same layout, so the table lists it as a method of its own. The runs
share one test-feature cache, <out>/.feature_cache: each test image is encoded once.
Finished runs are skipped: rerunning prints the table at once. ``--ablation`` runs DPC's ablation rows over the
demo's CoOp runs instead (``tools/demo/ablation.py``).
"""
import argparse
import os
import sys
import time

import torch
from tabulate import tabulate

from datasets.demo_world import make_demo_world
from tools import output_folders as layout
from tools.demo.ablation import ablation_variants, demo_ablation_table, save_demo_ablation_figure
from tools.pipeline.configs import resolve_dataset_config
from tools.pipeline.executors.inline import InProcessExecutor
from tools.pipeline.plan import Run, Spec, build_plan
from tools.pipeline.runner import INTERRUPTED, execute, summarize
from tools.tables.figure import matplotlib_available, save_base2new_figure
from tools.tables.render import mean_std_cell
from tools.tables.report import base2new_report

DATASET_CONFIG = "configs/demo/demo_world.yaml"
HOST_CONFIG = "configs/demo/coop.yaml"
DPC_CONFIG = "configs/demo/dpc.yaml"
ZERO_SHOT = "ZeroshotCLIP"
SHOTS = 16


def zero_shot_runs(root, out, seeds):
    """``ZeroshotCLIP --eval-only`` on base (train_base/...) and new (test_new/...) classes, once: it has no seed
    (nothing is trained or sampled; the test splits are whole), so it runs in the first seed's folder and the table
    averages that one result."""
    dataset = os.path.splitext(os.path.basename(DATASET_CONFIG))[0]
    cfg_name = os.path.splitext(os.path.basename(HOST_CONFIG))[0]
    runs, seed = [], seeds[0]
    for phase, subsample in (("train", "base"), ("test", "new")):
        output_dir = layout.run_dir(out, layout.BASE2NEW, phase, dataset, SHOTS, ZERO_SHOT, cfg_name, seed)
        opts = ["DATASET.NUM_SHOTS", SHOTS, "DATASET.SUBSAMPLE_CLASSES", subsample, *layout.feature_cache_opts(out)]
        runs.append(Run(os.path.relpath(output_dir, out), f"zero-shot-{subsample}", dataset, seed, SHOTS,
                        ZERO_SHOT, output_dir, ZERO_SHOT, root, DATASET_CONFIG, HOST_CONFIG, opts, eval_only=True))
    return runs


METHODS = [ZERO_SHOT, "CoOp", layout.method_dir_name("CoOp", dpc=True)]
FIGURE = "demo_figure.png"


def demo_report(out, seeds):
    return base2new_report(out, methods=set(METHODS), seeds=seeds)


def demo_table(out, seeds):
    """One row per method: base, new (mean ± std over seeds, then each seed's) and HM, from the runs' results.json."""
    methods = METHODS
    report = demo_report(out, seeds)
    lines = []
    for table in sorted(report["tables"], key=lambda t: methods.index(t["method"])):
        row = table["rows"][0]
        lines.append([table["paper_method"], mean_std_cell(row["base_mean"], row["base_std"], 2, row["base_per_seed"]),
                      mean_std_cell(row["new_mean"], row["new_std"], 2, row["new_per_seed"]), f"{row['hm']:.2f}"])
    return tabulate(lines, headers=["Method", "Base", "New", "HM"], tablefmt="github", disable_numparse=True)


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default="data", help="data root; the demo world goes to <root>/demo_world")
    parser.add_argument("--out", default=os.path.join("output", "demo"), help="output root of the runs")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--ablation", action="store_true",
                        help="the paper's component ablation over the demo's CoOp runs: TS, TS+DHNO, TS+DHNO+WE, "
                             "TS+WE+DE, DPC")
    # The tiny demo models gain nothing from more threads, and threads that wait for each other on a busy
    # machine made the demo several times slower: one thread unless asked.
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch's default)")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    start, cpu_start, load = time.time(), time.process_time(), os.getloadavg()[0]
    make_demo_world(args.root)  # a no-op when the world is already there
    resolve_dataset_config(DATASET_CONFIG)
    spec = Spec(host="CoOp", root=args.root, out=args.out, datasets=[DATASET_CONFIG], seeds=args.seeds,
                shots=[SHOTS], host_config=HOST_CONFIG, dpc_config=DPC_CONFIG, opts=layout.feature_cache_opts(args.out),
                variants=ablation_variants() if args.ablation else [{}])
    runs = build_plan(spec) if args.ablation else zero_shot_runs(args.root, args.out, args.seeds) + build_plan(spec)
    try:
        outcomes = execute(runs, executor=InProcessExecutor(), progress=sys.stderr.isatty())
    except KeyboardInterrupt:
        print(f"\n{INTERRUPTED}", file=sys.stderr)
        return 130
    print(summarize(outcomes))
    seed_list = " ".join(map(str, args.seeds))
    if args.ablation:
        print_ablation(args, seed_list)
    else:
        print_table(args, seed_list)
    # The runs share this one process and thread: its CPU time is what they take on an idle core.
    print(f"\nWall time: {time.time() - start:.0f} s (CPU time {time.process_time() - cpu_start:.0f} s; "
          f"load average {load:.1f} at the start)")
    return 0 if all(o.status in ("done", "ran") for o in outcomes) else 1


def print_ablation(args, seed_list):
    dataset = os.path.splitext(os.path.basename(DATASET_CONFIG))[0]
    print(f"\nDemo world, ablation of DPC's components over CoOp, base-to-new, {SHOTS} shots, seeds {seed_list} "
          "(mean ± std over seeds, then each seed's):\n")
    print(demo_ablation_table(args.out, args.seeds, dataset))
    print(f"\nPer-row CSV/JSON: python -m tools.tables {args.out} --ablation --paper none")
    figure = save_demo_ablation_figure(args.out, args.seeds, dataset)
    if figure:
        print(f"Figure: {os.path.abspath(figure)}")


def print_table(args, seed_list):
    print(f"\nDemo world, base-to-new, 16 shots, seeds {seed_list} (mean ± std over seeds, then each seed's):\n")
    print(demo_table(args.out, args.seeds))
    print(f"\nPer-method tables and CSV/JSON: python -m tools.tables {args.out} --paper none")
    figure = os.path.join(args.out, FIGURE)
    if matplotlib_available() and save_base2new_figure(demo_report(args.out, args.seeds), figure,
                                                       title=f"Demo world, base-to-new, seeds {seed_list}"):
        print(f"Figure: {os.path.abspath(figure)}")


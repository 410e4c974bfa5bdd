"""Classify image files or folders with a finished run's prompts, among any class names.

    python -m tools.predict --model-dir RUN IMAGES... [--classnames A,B,C | --classnames-file F] [--topk K]
                            [--out preds.csv|preds.json] [--load-epoch E] [--backbone CLIP.pt]

Folders are searched recursively for images. The default class list is the run's own classes. A DPC run routes each
class name as its evaluation does: the names it was trained on (its base classes) use the base prompt, every other
name the new-class prompt; the output says which route each class took. An image that cannot be read is named,
skipped and listed; the others are still classified. Runs on the GPU when there is one.
"""
import argparse
import csv
import json
import os
import sys
from collections import Counter

import torch
from tabulate import tabulate

from trainers.inference import load_run
from trainers.inference.classifier import read_rgb
from trainers.run.console_log import progress_bar
from trainers.run.errors import run_reporting_bad_input

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")


# ---- what tools.predict, tools.export and tools.interpret share ----------------------------------------------

def add_run_arguments(parser):
    parser.add_argument("--model-dir", required=True, help="a finished run's output folder (host, DPC or zero-shot)")
    parser.add_argument("--load-epoch", type=int, default=None,
                        help="its checkpoint of this epoch (default: the one its evaluation used)")
    parser.add_argument("--backbone", default="", help="where the run's CLIP weights are, if not where it read them")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: CUDA when available)")


def add_classname_arguments(parser):
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--classnames", default=None, help="comma-separated class names (default: the run's own)")
    group.add_argument("--classnames-file", default=None, help="a text file with one class name per line")


def classnames_from_args(args):
    """The class names asked for, or None (the run's own); an empty list reaches ``check_classnames``."""
    if args.classnames is not None:
        return [name.strip() for name in args.classnames.split(",") if name.strip()]
    if args.classnames_file is not None:
        with open(args.classnames_file) as f:
            return [line.strip() for line in f if line.strip()]
    return None


def load_from_args(args):
    return load_run(args.model_dir, args.load_epoch, args.device, args.backbone or None)


# ---- images --------------------------------------------------------------------------------------------------

def image_files(paths):
    """The files named and the images under the folders named (recursively, sorted); missing paths included,
    so that they are reported as skipped."""
    files = []
    for path in paths:
        if os.path.isdir(path):
            for folder, _, names in sorted(os.walk(path)):
                files += [os.path.join(folder, n) for n in sorted(names) if n.lower().endswith(IMAGE_EXTENSIONS)]
        else:
            files.append(path)
    return files


def classify(classifier, files, classnames, batch_size):
    """(files classified, their probabilities (N, C), skipped files as (file, why))."""
    done, probabilities, skipped = [], [], []
    batches = [files[i:i + batch_size] for i in range(0, len(files), batch_size)]
    for batch in progress_bar(batches):
        tensors = []
        for path in batch:
            try:
                tensors.append(classifier.transform(read_rgb(path)))
            except OSError as err:
                skipped.append((path, str(err)))
                print(f"Skipped: {err}", file=sys.stderr)
                continue
            done.append(path)
        if tensors:
            probabilities.append(classifier.predict(torch.stack(tensors), classnames).cpu())
    width = len(classifier.routes(classnames))
    return done, torch.cat(probabilities) if probabilities else torch.empty(0, width), skipped


def top_classes(probabilities, classnames, k):
    """Per image, the k most probable classes as (name, probability)."""
    values, indices = probabilities.topk(min(k, len(classnames)), dim=-1)
    return [[(classnames[i], float(p)) for p, i in zip(row_p.tolist(), row_i.tolist())]
            for row_p, row_i in zip(values, indices)]


def write_predictions(path, classifier, files, tops, routes, skipped, classnames):
    if path.endswith(".json"):
        content = {"model_dir": classifier.run.model_dir, "epoch": classifier.run.epoch, "classnames": classnames,
                   "routes": dict(zip(classnames, routes)) if routes[0] else None,
                   "predictions": [{"file": f, "top": [{"class": c, "probability": p} for c, p in top]}
                                   for f, top in zip(files, tops)],
                   "skipped": [{"file": f, "error": why} for f, why in skipped]}
        with open(path, "w") as f:
            json.dump(content, f, indent=2)
        return
    if not path.endswith(".csv"):
        raise ValueError(f"--out {path}: write .csv or .json")
    k = len(tops[0]) if tops else 0
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["file"] + [f"{field}_{i + 1}" for i in range(k) for field in ("class", "probability")])
        for file, top in zip(files, tops):
            writer.writerow([file] + [value for name, p in top for value in (name, f"{p:.6f}")])


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m tools.predict", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_arguments(parser)
    parser.add_argument("images", nargs="+", help="image files and folders (searched recursively)")
    add_classname_arguments(parser)
    parser.add_argument("--topk", type=int, default=3, help="classes shown per image (default 3)")
    parser.add_argument("--out", default="", help="write every prediction to this .csv or .json file")
    parser.add_argument("--show", type=int, default=20, help="images listed on the terminal (default 20)")
    parser.add_argument("--batch-size", type=int, default=64)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.out and not args.out.endswith((".csv", ".json")):
        raise ValueError(f"--out {args.out}: write .csv or .json")
    classifier = load_from_args(args)
    classnames = classnames_from_args(args)
    classnames = classifier.classnames if classnames is None else classnames
    routes = classifier.routes(classnames)  # checks the list: empty or repeated names are refused here
    files = image_files(args.images)
    if not files:
        raise FileNotFoundError(f"No image files in {' '.join(args.images)} (looked for {', '.join(IMAGE_EXTENSIONS)})")
    epoch = classifier.run.epoch
    print(f"{classifier.run.trainer} run {args.model_dir}" + (f", epoch {epoch}" if epoch else "")
          + f": {len(files)} image(s), {len(classnames)} classes")
    if routes[0]:
        for route in ("base", "new"):
            names = [n for n, r in zip(classnames, routes) if r == route]
            print(f"DPC route, {route} prompt: " + (", ".join(names) if names else "(none)"))
    done, probabilities, skipped = classify(classifier, files, classnames, args.batch_size)
    tops = top_classes(probabilities, classnames, args.topk)
    rows = [[f, ", ".join(f"{name} {p:.2f}" for name, p in top)] for f, top in zip(done, tops)]
    print(tabulate(rows[:args.show], headers=["file", f"top {min(args.topk, len(classnames))} (probability)"],
                   tablefmt="github", disable_numparse=True))
    if len(rows) > args.show:
        print(f"... and {len(rows) - args.show} more" + (" (all in --out)" if args.out else " (--out writes them all)"))
    counts = Counter(top[0][0] for top in tops)
    print("Top-1 counts: " + ", ".join(f"{name} {counts[name]}" for name in classnames))
    if skipped:
        print(f"Skipped {len(skipped)} file(s) that could not be read: " + ", ".join(f for f, _ in skipped))
    if args.out:
        write_predictions(args.out, classifier, done, tops, routes, skipped, classnames)
        print(f"Predictions written to {args.out}")
    return 1 if skipped and not done else 0


if __name__ == "__main__":
    sys.exit(run_reporting_bad_input(main, program="python -m tools.predict"))

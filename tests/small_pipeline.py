"""The small base-to-new pipeline of the executor tests: two generated datasets in the ImageFolder layout
(``shapes_a``: 3 colours x 2 shapes, ``shapes_b``: 2 x 3), the tiny CLIP, one epoch per stage; and what its
runs left behind: results and learned prompts, by run directory."""
import os

from datasets.shapes import make_shapes_dataset
from trainers.checkpoints import load_checkpoint
from trainers.run_record import read_results

RESULT_FIELDS = ("accuracy", "macro_f1", "error_rate", "n")


def make_two_datasets(folder):
    """DATA holding ``shapes_a`` and ``shapes_b`` under ``folder``, and a dataset yaml for each."""
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


def run_dirs(out):
    """Every run directory with a results.json under ``out``, relative to it."""
    return sorted(os.path.relpath(d, out) for d, _, files in os.walk(out) if "results.json" in files)


def results_by_run(out):
    """What each run measured (accuracy, macro-F1, error rate, test images), by run directory."""
    return {run: {field: read_results(os.path.join(out, run))[field] for field in RESULT_FIELDS}
            for run in run_dirs(out)}


def prompts_by_run(out):
    """The learned tensors of every checkpoint a training run saved, by checkpoint file."""
    prompts = {}
    for run in run_dirs(out):
        for directory, _, files in os.walk(os.path.join(out, run)):
            for name in sorted(f for f in files if f.startswith("model.pth.tar-")):
                path = os.path.join(directory, name)
                prompts[os.path.relpath(path, out)] = load_checkpoint(path)["state_dict"]
    return prompts

"""The small base-to-new pipeline of the executor tests (``tools/bench/executors.py`` times the same one),
and what its runs left behind: results and learned prompts, by run directory."""
import os

from tools.bench.executors import make_two_datasets, pipeline_argv, tiny_opts  # noqa: F401  (re-exported)
from trainers.run.checkpoints import load_checkpoint
from trainers.run.record import read_results

RESULT_FIELDS = ("accuracy", "macro_f1", "error_rate", "n")


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

"""``results.json``: the record written atomically after a run's final test; its presence marks a finished run."""
import datetime
import json
import os
import subprocess

import yaml

RESULTS_FILE = "results.json"
REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def git_commit():
    """The checkout's commit, or None outside a git checkout."""
    try:
        out = subprocess.run(["git", "-C", REPO_DIR, "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def write_results(output_dir, record):
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, RESULTS_FILE)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(record, f, indent=2)
    os.replace(tmp, path)
    return path


def read_results(output_dir):
    """The record of a finished run, or None when the run has not finished (or its record is unreadable)."""
    path = os.path.join(output_dir, RESULTS_FILE)
    try:
        with open(path) as f:
            record = json.load(f)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and "accuracy" in record else None


def remove_results(output_dir):
    path = os.path.join(output_dir, RESULTS_FILE)
    if os.path.exists(path):
        os.remove(path)


def build_record(cfg, split, metrics, num_samples, wall_time_s, extra=None):
    record = {
        "trainer": cfg.TRAINER.NAME,
        "dataset": cfg.DATASET.NAME,
        "subsample_classes": cfg.DATASET.SUBSAMPLE_CLASSES,
        "num_shots": cfg.DATASET.NUM_SHOTS,
        "seed": cfg.SEED,
        "split": split,
        "accuracy": float(metrics["accuracy"]),
        "error_rate": float(metrics.get("error_rate", 100.0 - metrics["accuracy"])),
        "macro_f1": float(metrics["macro_f1"]) if "macro_f1" in metrics else None,
        "n": int(num_samples),
        "wall_time_s": round(wall_time_s, 3),
        "finished_at": datetime.datetime.now().isoformat(timespec="seconds"),
        "commit": git_commit(),
        "config": yaml.safe_load(cfg.dump()),
    }
    record.update(extra or {})
    return record

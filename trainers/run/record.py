"""``results.json``, the record written atomically after a run's final test.

A run is finished when its ``results.json`` is valid (``results_problem`` returns ""): the fields a table and
the pipeline read are there with the right types, and the accuracy is a finite percentage. The record carries
the run's identity (``trainers/engine/identity.py``).
"""
import datetime
import json
import math
import os
import subprocess
import uuid

import yaml

from trainers.run.checkpoints import POINTER_FILE, write_text_atomically
from trainers.run.paths import REPO_DIR

RESULTS_FILE = "results.json"


def git_commit():
    """The checkout's commit, or None outside a git checkout."""
    try:
        out = subprocess.run(["git", "-C", REPO_DIR, "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def new_run_id():
    return uuid.uuid4().hex


def write_results(output_dir, record):
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, RESULTS_FILE)
    write_text_atomically(path, json.dumps(record, indent=2), "the run's record")
    return path


# field -> accepted types, for every field the pipeline and the tables read
SCHEMA = {"trainer": str, "dataset": str, "subsample_classes": str, "num_shots": int, "seed": int,
          "split": str, "accuracy": (int, float), "n": int, "run_id": str, "identity": dict}


def load_record(output_dir):
    """(record or None, problem): the problem says why the run does not count as finished ("" when it does)."""
    path = os.path.join(output_dir, RESULTS_FILE)
    if not os.path.exists(path):
        return None, "no results.json"
    try:
        with open(path) as f:
            record = json.load(f)
    except (OSError, ValueError) as err:
        return None, f"{path} is unreadable ({err})"
    if not isinstance(record, dict):
        return None, f"{path} does not hold a JSON object"
    for key, types in SCHEMA.items():
        if key not in record:
            return None, f"{path} lacks {key!r}"
        value = record[key]
        if not isinstance(value, types) or isinstance(value, bool):
            return None, f"{path}: {key} is {value!r}, not a {getattr(types, '__name__', 'number')}"
    accuracy = record["accuracy"]
    if not (math.isfinite(accuracy) and 0.0 <= accuracy <= 100.0):
        return None, f"{path}: accuracy {accuracy!r} is not a percentage"
    if record["n"] <= 0:
        return None, f"{path}: n is {record['n']}, no test image was evaluated"
    return record, ""


def read_results(output_dir):
    """The record of a finished run, or None when the run has not finished (or its record is not valid)."""
    return load_record(output_dir)[0]


def remove_results(output_dir):
    path = os.path.join(output_dir, RESULTS_FILE)
    if os.path.exists(path):
        os.remove(path)


def refuse_evaluation_into_training_run(output_dir):
    """An evaluation writes its own results.json: never into a folder that holds a training run (its record or
    its checkpoints), whose result it would replace."""
    path = os.path.join(output_dir, RESULTS_FILE)
    try:
        with open(path) as f:
            record = json.load(f)
    except (OSError, ValueError):
        record = None
    trained = isinstance(record, dict) and not (record.get("identity") or {}).get("eval_only", True)
    names = os.listdir(output_dir) if os.path.isdir(output_dir) else []
    if trained or any(os.path.isfile(os.path.join(output_dir, name, POINTER_FILE)) for name in names):
        raise ValueError(f"--output-dir {output_dir} holds a training run; an evaluation would replace its "
                         "results.json: evaluate into another folder")


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

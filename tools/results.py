"""Reading finished runs back from an output root: ``results.json`` files only, never logs.

Each record names where the run sits in the layout (``tools.layout``) and what it measured.
"""
import os
from dataclasses import dataclass

from trainers.run_record import read_results

from . import layout


@dataclass(frozen=True)
class RunResult:
    phase: str  # "train" or "test"
    dataset: str  # the dataset config's stem (the folder name)
    dataset_name: str  # DATASET.NAME recorded by the run
    shots: int
    method: str  # folder name: CoOp, DPC_CoOp
    cfg: str
    seed: int
    accuracy: float
    path: str

    @property
    def host(self):
        return layout.split_method_dir_name(self.method)[0]

    @property
    def dpc(self):
        return layout.split_method_dir_name(self.method)[1]


def _phase_results(out, mode, phase):
    root = layout.phase_root(out, mode, phase)
    if not os.path.isdir(root):
        return []
    found = []
    for directory, subdirs, files in os.walk(root):
        subdirs.sort()
        if layout.RESULTS_FILE not in files:
            continue
        where = layout.parse_run_dir(directory, root)
        record = read_results(directory)
        if where is None or record is None:
            continue
        found.append(RunResult(phase, where["dataset"], record.get("dataset") or where["dataset"], where["shots"],
                               where["method"], where["cfg"], where["seed"], float(record["accuracy"]),
                               os.path.join(directory, layout.RESULTS_FILE)))
    return found


def collect(out, mode, phases=("train", "test"), methods=None, cfgs=None, shots=None, seeds=None):
    """Every finished run of ``mode`` under ``out``, optionally only some methods, configs, shots or seeds."""
    results = []
    for phase in phases:
        if (mode, phase) == (layout.FEW_SHOT, "test"):
            continue  # few-shot runs are evaluated by their own final test
        results += _phase_results(out, mode, phase)
    return [r for r in results
            if (not methods or r.method in methods) and (not cfgs or r.cfg in cfgs)
            and (not shots or r.shots in shots) and (not seeds or r.seed in seeds)]

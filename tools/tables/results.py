"""Reading finished runs back from an output root: ``results.json`` files only, never logs.

Each record names where the run sits in the layout (``tools.output_folders``) and what it measured. A record that is
not valid, or whose classes are not the ones its folder stands for (a new-class test written into a base
folder), is left out with a warning naming the file. A run folder without a valid record (a run still going,
killed, or failed) is an unfinished run: ``collect_unfinished`` lists them, so that the tables can say what they
leave out.
"""
import os
import sys
from dataclasses import dataclass

from tools import output_folders as layout
from trainers.engine.upstream import unfinished_marks
from trainers.run.record import load_record


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
    marks: tuple = ()  # why its number is not a regular run's (``record_marks``); the tables print them

    @property
    def cfg_name(self):
        """The config's stem, without the extra settings of a variant folder."""
        return layout.parse_variant_dir_name(self.cfg)[0]

    @property
    def settings(self):
        """The extra settings of a variant folder (a sweep value, an ablation row): {KEY: VALUE}, {} for none."""
        return layout.parse_variant_dir_name(self.cfg)[1]

    @property
    def host(self):
        return layout.split_method_dir_name(self.method)[0]

    @property
    def dpc(self):
        return layout.split_method_dir_name(self.method)[1]


@dataclass(frozen=True)
class UnfinishedRun:
    """A run folder of the layout without a valid ``results.json``."""

    phase: str
    dataset: str
    shots: int
    method: str
    cfg: str
    seed: int
    path: str

    cfg_name = RunResult.cfg_name
    settings = RunResult.settings
    host = RunResult.host
    dpc = RunResult.dpc


def record_marks(record):
    """What a table says beside a run: built on an unfinished input, on a split drawn here, or on a test set with
    images left out."""
    marks = unfinished_marks(record)
    if record.get("split_generated"):
        marks.append(f"split drawn here ({record['split_generated']}), not the published one")
    if record.get("unreadable_skipped"):
        marks.append(f"{record['unreadable_skipped']} listed image(s) left out (DATASET.SKIP_UNREADABLE)")
    return tuple(marks)


def marked_runs(results):
    """``[{"path", "marks"}]`` for the runs a report shows that carry marks."""
    return [{"path": r.path, "marks": list(r.marks)} for r in results if r.marks]


def _run_dirs(root):
    """(directory, its place in the layout, whether it holds a results.json) of every run folder below ``root``."""
    for directory, subdirs, files in os.walk(root):
        subdirs.sort()
        where = layout.parse_run_dir(directory, root)
        if where is not None:
            subdirs[:] = []  # a run's own subfolders (checkpoints) hold no runs
            yield directory, where, layout.RESULTS_FILE in files


def _phase_unfinished(out, mode, phase):
    root = layout.phase_root(out, mode, phase)
    if not os.path.isdir(root):
        return []
    return [UnfinishedRun(phase, where["dataset"], where["shots"], where["method"], where["cfg"], where["seed"],
                          directory)
            for directory, where, _ in _run_dirs(root) if load_record(directory)[1]]


def _phase_results(out, mode, phase):
    root = layout.phase_root(out, mode, phase)
    if not os.path.isdir(root):
        return []
    found = []
    for directory, where, has_record in _run_dirs(root):
        if not has_record:
            continue
        record, problem = load_record(directory)
        expected = _expected_classes(mode, phase)
        if record is not None and record["subsample_classes"] != expected:
            problem = (f"{os.path.join(directory, layout.RESULTS_FILE)} holds a run on the "
                       f"{record['subsample_classes']!r} classes, but its folder is for the {expected!r} classes")
        if problem:
            print(f"Warning: left out of the table: {problem}", file=sys.stderr)
            continue
        if record.get("overrides"):
            changes = ", ".join(f"{key} {change.get('run')} (its config says {change.get('config')})"
                                for key, change in record["overrides"].items())
            print(f"Note: {os.path.join(directory, layout.RESULTS_FILE)} ran with {changes}", file=sys.stderr)
        found.append(RunResult(phase, where["dataset"], record.get("dataset") or where["dataset"], where["shots"],
                               where["method"], where["cfg"], where["seed"], float(record["accuracy"]),
                               os.path.join(directory, layout.RESULTS_FILE), record_marks(record)))
    return found


def _expected_classes(mode, phase):
    if mode == layout.BASE2NEW:
        return "base" if phase == "train" else "new"
    return "all"


def _phases(mode, phases):
    # few-shot runs are evaluated by their own final test
    return [phase for phase in phases if (mode, phase) != (layout.FEW_SHOT, "test")]


def _selected(runs, methods, cfgs, shots, seeds):
    return [r for r in runs
            if (not methods or r.method in methods) and (not cfgs or r.cfg in cfgs)
            and (not shots or r.shots in shots) and (not seeds or r.seed in seeds)]


def collect(out, mode, phases=("train", "test"), methods=None, cfgs=None, shots=None, seeds=None):
    """Every finished run of ``mode`` under ``out``, optionally only some methods, configs, shots or seeds."""
    results = [r for phase in _phases(mode, phases) for r in _phase_results(out, mode, phase)]
    return _selected(results, methods, cfgs, shots, seeds)


def collect_unfinished(out, mode, phases=("train", "test"), methods=None, cfgs=None, shots=None, seeds=None):
    """Every run folder of ``mode`` under ``out`` without a valid record, with the same filters as ``collect``."""
    runs = [r for phase in _phases(mode, phases) for r in _phase_unfinished(out, mode, phase)]
    return _selected(runs, methods, cfgs, shots, seeds)

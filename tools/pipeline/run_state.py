"""Whether a planned run is finished, and if not, whether its folder holds another run that must make room.

A run counts as finished only when its ``results.json`` is valid, records the identity the plan gives it
(trainer, dataset, classes, shots, seed, config hash: the options included), and was made from the runs it
needs as they are now (their run ids). A folder that holds a record or a checkpoint of another run is stale:
the pipeline moves it aside and runs the planned run afresh, saying why.
"""
import datetime
import os

from trainers.engine.identity import identity_differences, run_identity
from trainers.run.checkpoints import POINTER_FILE, latest_checkpoint, load_checkpoint
from trainers.run.record import RESULTS_FILE, load_record


def expected_identity(run):
    """The identity train.py will record for this run, from the config it will build (``Run.config``)."""
    return run_identity(run.config(), eval_only=run.eval_only)


def _link(record, run):
    """The run id of the run this one was made from: the checkpoint it evaluated, or DPC's stage 1."""
    if run.eval_only:
        return (record.get("evaluated") or {}).get("run_id")
    return record.get("built_on")


def unfinished_reason(run):
    """"" when the run is finished; otherwise why not (``no results.json`` for a run not yet made)."""
    record, problem = load_record(run.output_dir)
    if record is None:
        return problem
    differences = identity_differences(record["identity"], expected_identity(run))
    if differences:
        return "its results.json is of another run (" + "; ".join(differences) + ")"
    for need in run.needs:
        need_record, _ = load_record(need.output_dir)
        if need_record is None:
            return f"needs {need.key}, which has no valid results.json"
        if _link(record, run) != need_record["run_id"]:
            return f"was made from an earlier {need.key} (that run was redone since)"
    return ""


def is_finished(run):
    return unfinished_reason(run) == ""


def _checkpoint_problem(run):
    """Why the latest checkpoint in the folder cannot be resumed by the planned run ("" when it can)."""
    if not os.path.isdir(run.output_dir):
        return ""
    for name in sorted(os.listdir(run.output_dir)):
        model_dir = os.path.join(run.output_dir, name)
        path = latest_checkpoint(model_dir) if os.path.isfile(os.path.join(model_dir, POINTER_FILE)) else None
        if path is None:
            continue
        try:
            info = load_checkpoint(path).get("run")
        except Exception as err:  # noqa: BLE001  (an unreadable checkpoint cannot be resumed either)
            return f"{path} is unreadable ({err})"
        if info is None:
            return ""
        differences = identity_differences(info["identity"], expected_identity(run))
        for need in run.needs:
            need_record, _ = load_record(need.output_dir)
            if need_record is not None and info.get("built_on") != need_record["run_id"]:
                differences.append(f"made from an earlier {need.key}")
        if differences:
            return f"{path} is of another run (" + "; ".join(differences) + ")"
    return ""


def stale_reason(run):
    """Why the run's folder must be moved aside before it runs ("" when it can be resumed or is empty)."""
    if os.path.exists(os.path.join(run.output_dir, RESULTS_FILE)):
        return unfinished_reason(run)
    return _checkpoint_problem(run)


def move_aside(run):
    """Rename the run's folder to ``<folder>.stale-<time>``; returns the new path."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    target = f"{run.output_dir.rstrip(os.sep)}.stale-{stamp}"
    suffix = 1
    while os.path.exists(target):
        suffix += 1
        target = f"{run.output_dir.rstrip(os.sep)}.stale-{stamp}-{suffix}"
    os.rename(run.output_dir, target)
    return target

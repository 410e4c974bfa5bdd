"""The runs a run reads (a stage 1, a teacher, ``--model-dir``): whether each is finished, and that the run's own
folder is not one of theirs. Checked by ``train.py`` before the run's folder is locked or written.

A run folder is *finished* when its ``results.json`` is a valid record of a training run (``record.py``). A folder
(or a checkpoint file inside one) whose checkpoints carry this repository's run record but whose ``results.json``
is missing or invalid is *unfinished*: stopped, killed, still running. A folder whose checkpoints carry no run
record was written by the reference code (or by a version before run records): it is *foreign*, accepted as it
is, since its finished state cannot be known, and said so in the record.

Training on an unfinished stage 1 (``TRAINER.DPC.BACKBONE_DIR``) or evaluating an unfinished ``--model-dir`` is
refused unless asked for (``TRAINER.DPC.ALLOW_UNFINISHED_STAGE1 True``, ``--allow-unfinished``); then the run's
``results.json`` says so (``UNFINISHED_FIELDS``) and the tables mark it. A teacher is read as it is: only the
folder rule applies to it.
"""
import os
from dataclasses import dataclass
from typing import Callable

from trainers.engine.identity import identity_differences
from trainers.run.checkpoints import BEST_FILE, latest_checkpoint, load_checkpoint
from trainers.run.config_keys import ConfigError
from trainers.run.record import load_record

FINISHED, UNFINISHED, FOREIGN = "finished", "unfinished", "foreign"
UNFINISHED_FIELDS = ("stage1", "evaluated_run")  # results.json fields that hold an input run's state


@dataclass(frozen=True)
class InputRun:
    """A run folder (or a checkpoint file in one) that a run reads."""
    what: str  # how the command names it: "TRAINER.DPC.BACKBONE_DIR", "--model-dir"
    path: str
    must_be_finished: bool = True  # False: read as it is (a teacher); only the folder rule applies
    allowed_by: str = ""  # the key or flag that accepts it unfinished
    allowed: bool = False
    record_field: str = ""  # the results.json field that records its state
    read: Callable = load_checkpoint  # how a checkpoint file of it is read (a reader may share its read)

    @property
    def run_dir(self):
        """The run's folder: ``<run>/<model>/<checkpoint file>`` for a file, else the path itself."""
        path = os.path.abspath(self.path)
        return os.path.dirname(os.path.dirname(path)) if os.path.isfile(path) else path


def _latest_in(run_dir):
    """The newest checkpoint file of the run folder's model folders, or None."""
    names = sorted(os.listdir(run_dir)) if os.path.isdir(run_dir) else []
    found = []
    for name in names:
        folder = os.path.join(run_dir, name)
        path = latest_checkpoint(folder) if os.path.isdir(folder) else None
        if path is None and os.path.isfile(os.path.join(folder, BEST_FILE)):
            path = os.path.join(folder, BEST_FILE)
        if path:
            found.append(path)
    return found[0] if found else None


def run_state(source):
    """``(state, text)``: FINISHED, UNFINISHED or FOREIGN, and the words results.json keeps, e.g.
    ``unfinished (epoch 1 of 6)``; ``(None, "")`` when there is nothing to judge (no checkpoint: the reader of the
    input says so)."""
    record, _ = load_record(source.run_dir)
    file_given = os.path.isfile(source.path)
    checkpoint_path = source.path if file_given else _latest_in(source.run_dir)
    if record is not None and not record["identity"].get("eval_only", True) and not file_given:
        return FINISHED, FINISHED
    if checkpoint_path is None:
        return None, ""
    checkpoint = source.read(checkpoint_path)
    run = checkpoint.get("run") if isinstance(checkpoint, dict) else None
    if not run:
        return FOREIGN, "foreign (a checkpoint without a run record: the reference code's or an older version's)"
    if record is not None and record.get("run_id") == run.get("run_id") and not record["identity"].get("eval_only"):
        return FINISHED, FINISHED
    total = run.get("max_epoch")
    return UNFINISHED, f"unfinished (epoch {checkpoint.get('epoch')} of {total if total else 'an unknown number'})"


def check_finished(source):
    """The state's words for the record; a refused unfinished input is a ``ConfigError`` naming the folder, the
    epoch reached and what to do."""
    state, text = run_state(source)
    if state == UNFINISHED and not source.allowed:
        raise ConfigError(
            f"{source.what} {source.path}: that run is {text}, it has no finished results.json; finish it first "
            f"(its own command again resumes it), or set {source.allowed_by} to use it as it is (the record says so)")
    return text


def _inside(path, folder):
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def check_output_dir(output_dir, sources, exempt=""):
    """Refuse an ``--output-dir`` that is, or lies inside, the folder of a run this one reads (the two runs'
    checkpoints and records would mix, and the one read would be replaced). ``exempt``: the evaluation folder
    this repository itself places inside the run it evaluates (``finished.py``)."""
    if not output_dir or (exempt and os.path.realpath(output_dir) == os.path.realpath(exempt)):
        return
    for source in sources:
        if source.path and _inside(output_dir, source.run_dir):
            raise ConfigError(f"--output-dir {output_dir} is, or lies inside, the folder of the run given as "
                              f"{source.what} ({source.run_dir}): this run would write into that one; choose "
                              "an --output-dir outside it")


def unfinished_marks(record):
    """The lines a table prints for a record built on an unfinished input (none for a regular run)."""
    return [f"{field}: {record[field]}" for field in UNFINISHED_FIELDS
            if str(record.get(field, "")).startswith(UNFINISHED)]


def check_not_another_finished_run(output_dir, record, identity, model_dir=""):
    """Refuse a run into a folder holding the finished record of another run (another trainer, dataset, setting,
    or an evaluation of another ``--model-dir``): its results.json would be replaced. The same run again (a
    resume, a re-evaluation) is not refused."""
    if record is None:
        return
    differences = identity_differences(record["identity"], identity)
    evaluated = (record.get("evaluated") or {}).get("model_dir")
    if identity.get("eval_only") and evaluated and model_dir and evaluated != os.path.abspath(model_dir):
        differences.append(f"--model-dir: {evaluated} there, {os.path.abspath(model_dir)} here")
    if differences:
        raise ConfigError(f"--output-dir {output_dir} holds a finished run, and this command belongs to another run "
                          f"({'; '.join(differences)}): its results.json would be replaced; choose another "
                          "--output-dir")

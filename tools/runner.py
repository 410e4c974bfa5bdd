"""Executing a plan: finished runs are skipped, unfinished ones are (re)run in their own directory, failures
are reported and do not stop the runs that do not depend on them.

A run is finished when its ``results.json`` is valid and is the planned run's (``tools.run_state``): train.py
writes it atomically after the final test, so a run killed at any point has none and is simply run again in
the same directory, where train.py resumes from the latest checkpoint. A folder holding another run (other
options, a redone dependency, an invalid record) is moved aside first. Each run is a separate ``train.py``
process started from the repository root, which dies with the pipeline; its output goes to
``<run dir>/pipeline_output.txt`` (train.py also keeps its own ``log.txt`` there).
"""
import ctypes
import datetime
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

from tqdm import tqdm

from .configs import REPO_DIR
from .run_state import is_finished, move_aside, stale_reason, unfinished_reason

OUTPUT_FILE = "pipeline_output.txt"

DONE = "done"  # finished before this invocation: skipped
RAN = "ran"  # run now and finished
FAILED = "failed"  # run now and did not finish
BLOCKED = "blocked"  # not run: a run it needs did not finish


@dataclass
class Outcome:
    run: object
    status: str
    message: str = ""
    seconds: float = 0.0
    rerun_because: str = ""  # the folder held another run, moved aside first

    @property
    def output_file(self):
        return os.path.join(self.run.output_dir, OUTPUT_FILE)


def _die_with_parent(parent_pid):
    """In the child, before exec: the kernel sends SIGTERM when the pipeline dies (Linux; elsewhere a no-op)."""
    def set_death_signal():
        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            return
        if os.getppid() != parent_pid:  # the pipeline died before the signal was armed
            os._exit(1)
    return set_death_signal


class SubprocessExecutor:
    """Runs ``python train.py ARGV`` with this interpreter from the repository root; returns its exit status."""

    def __init__(self, python=sys.executable):
        self.python = python

    def __call__(self, run, output_file):
        with open(output_file, "a") as out:
            stamp = datetime.datetime.now().isoformat(timespec="seconds")
            out.write(f"===== {stamp} pipeline: {run.command_line()}\n")
            out.flush()
            process = subprocess.run([self.python, "train.py", *run.argv], cwd=REPO_DIR, stdout=out,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     preexec_fn=_die_with_parent(os.getpid()))
        return process.returncode


class InProcessExecutor:
    """Runs ``train.main(ARGV)`` inside this process: the same code path as ``python train.py ARGV`` without
    a new interpreter per run (seconds each on a small machine). Used by the demo; returns 0 or 1."""

    def __call__(self, run, output_file):
        import contextlib
        import traceback

        import train

        with open(output_file, "a") as out, contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            out.write(f"===== {datetime.datetime.now().isoformat(timespec='seconds')} in-process: "
                      f"{run.command_line()}\n")
            try:
                train.main(train.build_parser().parse_args(run.argv))
                status = 0
            except Exception:  # noqa: BLE001 - a failed run is reported, the others go on
                traceback.print_exc()
                status = 1
            finally:
                _untee()
        return status


def _untee():
    """train.py tees stdout/stderr into the run's log.txt: restore the streams it wrapped."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        while hasattr(stream, "stream") and hasattr(stream, "file"):
            stream.file.close()
            stream = stream.stream
        setattr(sys, name, stream)


def _last_lines(path, count=3):
    try:
        with open(path, errors="replace") as f:
            lines = [line.rstrip() for line in f if line.strip()]
    except OSError:
        return ""
    return " | ".join(lines[-count:])


def _why_blocked(run, outcomes):
    """The reason ``run`` cannot start, or "" when every run it needs has finished."""
    for need in run.needs:
        if is_finished(need):
            continue
        earlier = outcomes.get(need.key)
        if earlier is not None and earlier.status in (FAILED, BLOCKED):
            return f"needs {need.key}, which {earlier.status}"
        return f"needs {need.key} ({need.stage}), which has not finished and is not among the selected stages"
    return ""


def execute(runs, executor=None, progress=True, echo=None):
    """Run ``runs`` in order; returns one ``Outcome`` per run. ``echo`` prints a line (default: above the bar)."""
    executor = executor or SubprocessExecutor()
    outcomes = {}
    bar = tqdm(total=len(runs), unit="run", disable=not progress, dynamic_ncols=True)
    say = echo or (tqdm.write if progress else print)
    try:
        for run in runs:
            bar.set_description(f"{run.stage} {run.dataset} seed{run.seed}")
            outcomes[run.key] = _execute_one(run, executor, outcomes, say)
            bar.update(1)
    finally:
        bar.close()
    return [outcomes[run.key] for run in runs]


def _execute_one(run, executor, outcomes, say):
    if is_finished(run):
        return Outcome(run, DONE, "finished earlier")
    reason = _why_blocked(run, outcomes)
    if reason:
        say(f"[blocked] {run.key}: {reason}")
        return Outcome(run, BLOCKED, reason)
    rerun_because = stale_reason(run)
    if rerun_because:
        rerun_because += f"; the earlier folder was moved to {move_aside(run)}"
        say(f"[rerun] {run.key}: {rerun_because}")
    os.makedirs(run.output_dir, exist_ok=True)
    output_file = os.path.join(run.output_dir, OUTPUT_FILE)
    say(f"[run] {run.key}")
    start = time.time()
    status = executor(run, output_file)
    seconds = time.time() - start
    if status == 0 and is_finished(run):
        return Outcome(run, RAN, "", seconds, rerun_because)
    what = f"exit status {status}" if status != 0 else f"exited 0 but {unfinished_reason(run)}"
    message = f"{what}; see {output_file}"
    tail = _last_lines(output_file)
    if tail:
        message += f" (last lines: {tail})"
    say(f"[failed] {run.key}: {message}")
    return Outcome(run, FAILED, message, seconds, rerun_because)


def summarize(outcomes):
    """A few lines: counts per status, then every failed and blocked run with its reason."""
    counts = {status: sum(o.status == status for o in outcomes) for status in (RAN, DONE, FAILED, BLOCKED)}
    lines = [f"{len(outcomes)} runs: {counts[RAN]} ran, {counts[DONE]} already finished (skipped), "
             f"{counts[FAILED]} failed, {counts[BLOCKED]} blocked"]
    for outcome in outcomes:
        if outcome.rerun_because:
            lines.append(f"  rerun: {outcome.run.key}: {outcome.rerun_because}")
        if outcome.status in (FAILED, BLOCKED):
            lines.append(f"  {outcome.status}: {outcome.run.key}: {outcome.message}")
    return "\n".join(lines)


def dry_run_lines(runs):
    """The command of every run, from the repository root; finished runs appear as comments."""
    lines = [f"# {len(runs)} runs, from {REPO_DIR}"]
    for run in runs:
        line = run.command_line()
        lines.append(f"# finished, skipped: {line}" if is_finished(run) else line)
    return lines

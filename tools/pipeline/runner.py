"""Executing a plan: finished runs are skipped, unfinished ones are (re)run in their own directory, failures
are reported and do not stop the runs that do not depend on them; where the runs execute is the executor's
business (``tools/pipeline/executors``), and these rules are the same for every executor.

A run is finished when its ``results.json`` is valid and is the planned run's (``tools.pipeline.run_state``): train.py
writes it atomically after the final test, so a run killed at any point has none and is simply run again in
the same directory, where train.py resumes from the latest checkpoint. A folder holding another run (other
options, a redone dependency, an invalid record) is moved aside first. A run starts as soon as every run it
needs has an outcome and the executor has room; its output goes to ``<run dir>/pipeline_output.txt``
(train.py also keeps its own ``log.txt`` there).
"""
import os
import time
from dataclasses import dataclass

from tqdm import tqdm

from tools.pipeline.executors.inline import as_executor
from tools.pipeline.executors.processes import SerialExecutor
from tools.pipeline.progress import RunsProgress
from tools.pipeline.run_state import is_finished, move_aside, stale_reason, unfinished_reason
from trainers.run.paths import REPO_DIR

OUTPUT_FILE = "pipeline_output.txt"
INTERRUPTED = "Interrupted: run the same command again to resume (finished runs are skipped)"

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


def _last_lines(path, count=3):
    try:
        with open(path, errors="replace") as f:
            lines = [line.rstrip() for line in f if line.strip()]
    except OSError:
        return ""
    return " | ".join(lines[-count:])


class _Schedule:
    """The plan's runs and where each one stands: pending, started, or settled with an ``Outcome``."""

    def __init__(self, runs, ranks):
        self.runs = runs
        self.planned = {run.key for run in runs}
        self.pending = sorted(runs, key=lambda run: ranks[run.key])
        self.checked = set()  # pending runs known to need running
        self.started = {}  # key -> (run, start time)
        self.outcomes = {}

    def ready(self):
        """Pending runs whose planned needs all have an outcome, best ranked first."""
        return [run for run in self.pending
                if all(need.key in self.outcomes or need.key not in self.planned for need in run.needs)]

    def settle(self, outcome):
        key = outcome.run.key
        self.outcomes[key] = outcome
        self.started.pop(key, None)
        self.pending = [run for run in self.pending if run.key != key]

    def begin(self, run):
        self.pending.remove(run)
        self.started[run.key] = (run, time.time())

    def start_times(self):
        """[(run, start time), ...] of the runs in progress (read by the progress bar's thread)."""
        return list(self.started.values())

    def placed(self):
        """How many runs have started or settled."""
        return len(self.outcomes) + len(self.started)

    def unsettled(self):
        return len(self.outcomes) < len(self.runs)


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


def _settled_without_running(run, outcomes, say):
    """DONE when the run finished earlier, BLOCKED when a run it needs did not finish, else None."""
    if is_finished(run):
        return Outcome(run, DONE, "finished earlier")
    reason = _why_blocked(run, outcomes)
    if reason:
        say(f"[blocked] {run.key}: {reason}")
        return Outcome(run, BLOCKED, reason)
    return None


def _start(run, executor, say, position):
    """Start ``run`` (or follow it, if an earlier invocation left it running); returns the rerun note.
    ``position`` (``5/16``) is the run's place among the plan's runs as they start or settle."""
    output_file = os.path.join(run.output_dir, OUTPUT_FILE)
    followed = executor.adopt(run, output_file)
    if followed is not None:
        say(f"[running {position}] {run.key}: {followed}")
        return ""
    rerun_because = stale_reason(run)
    if rerun_because:
        rerun_because += f"; the earlier folder was moved to {move_aside(run)}"
        say(f"[rerun] {run.key}: {rerun_because}")
    os.makedirs(run.output_dir, exist_ok=True)
    where = executor.start(run, output_file)
    say(f"[run {position}] {run.key}{' ' + where if where else ''}")
    return rerun_because


def _judge(run, ended, rerun_because, seconds, say):
    """RAN when the run exited 0 and left its valid results.json; FAILED otherwise, with its output's tail."""
    if ended.status == 0 and is_finished(run):
        return Outcome(run, RAN, "", seconds, rerun_because)
    output_file = os.path.join(run.output_dir, OUTPUT_FILE)
    what = ended.describe() if ended.status != 0 else f"exited 0 but {unfinished_reason(run)}"
    message = f"{what}; see {output_file}"
    tail = _last_lines(output_file)
    if tail:
        message += f" (last lines: {tail})"
    say(f"[failed] {run.key}: {message}")
    return Outcome(run, FAILED, message, seconds, rerun_because)


def _start_ready_runs(schedule, executor, notes, say):
    """Settle (done, blocked) or start ready runs, best ranked first, while the executor has room; a settled
    run can make its dependants ready, so this goes on until nothing is left to do. Returns how many settled."""
    settled = 0
    while True:
        run = next((run for run in schedule.ready() if run.key not in schedule.checked or executor.has_room()),
                   None)
        if run is None:
            return settled
        if run.key not in schedule.checked:
            outcome = _settled_without_running(run, schedule.outcomes, say)
            if outcome is not None:
                schedule.settle(outcome)
                settled += 1
                continue
            schedule.checked.add(run.key)  # it needs running: from now on it waits for room only
            if not executor.has_room():
                continue
        schedule.begin(run)  # first: an inline executor's run ends within _start, and the bar should show it
        notes[run.key] = _start(run, executor, say, f"{schedule.placed()}/{len(schedule.runs)}")


def execute(runs, executor=None, progress=True, echo=None):
    """Run ``runs`` (a plan, every run after the runs it needs) with ``executor`` (default: serial); returns
    one ``Outcome`` per run, in the plan's order. ``echo`` prints a line (default: above the progress bar)."""
    executor = SerialExecutor() if executor is None else as_executor(executor)
    say = echo or (tqdm.write if progress else print)
    schedule = _Schedule(runs, executor.ordering(runs))
    notes = {}
    bar = RunsProgress(len(runs), schedule.start_times, lambda run: os.path.join(run.output_dir, OUTPUT_FILE),
                       enabled=progress)
    try:
        while schedule.unsettled():
            bar.settled_without_running(_start_ready_runs(schedule, executor, notes, say))
            if not schedule.started:
                if schedule.unsettled():  # a plan lists needs first, so something is always ready or running
                    raise RuntimeError("no run is ready or running: the plan is not in dependency order")
                break
            for run, ended in executor.wait(say):
                seconds = time.time() - schedule.started[run.key][1]
                schedule.settle(_judge(run, ended, notes.pop(run.key), seconds, say))
                bar.update(1)
    except BaseException:
        executor.stop(say)
        raise
    finally:
        bar.close()
    return [schedule.outcomes[run.key] for run in runs]


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


def dry_run_lines(runs, executor=None):
    """What the pipeline would do, from the repository root: the executor lays out the commands (the serial
    default lists every run's command in order); finished runs appear as comments."""
    executor = SerialExecutor() if executor is None else as_executor(executor)
    finished = {run.key for run in runs if is_finished(run)}
    return [f"# {run_counts(runs, finished)}, from {REPO_DIR}", *executor.dry_run_lines(runs, finished)]


def run_counts(runs, finished=()):
    """``N runs: T trainings, E evaluations`` (and how many of them have finished)."""
    trainings = sum(not run.eval_only for run in runs)
    done = f" ({len(finished)} finished)" if finished else ""
    return f"{len(runs)} runs: {trainings} trainings, {len(runs) - trainings} evaluations{done}"

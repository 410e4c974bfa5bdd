"""What the pipeline's progress bar says about the runs in progress, read from their output files.

Every executor sends a run's output to ``<run>/pipeline_output.txt``, and train.py prints Dassl's training
line there under both runtimes (``epoch [3/20] batch [5/10] ... eta 0:01:02``), so the bar reads the epoch
and the run's own ETA from the file's tail: nothing has to be passed up from a child process or a Slurm job.
"""
import os
import re
import threading
import time

from tqdm import tqdm

TRAINING_LINE = re.compile(r"epoch \[(\d+)/(\d+)\].*?\beta (\d[\d:]*)")
TESTING_LINE = "Evaluate on the *"
TAIL_BYTES = 16384  # a few training lines; the file grows by one line per printed batch
REFRESH_SECONDS = 1.0


def _tail(path):
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.path.getsize(path) - TAIL_BYTES))
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def run_status(output_file):
    """``epoch 3/20, eta 0:01:02``, ``testing``, or "" (starting), from the end of a run's output file."""
    tail = _tail(output_file)
    training = list(TRAINING_LINE.finditer(tail))
    testing = tail.rfind(TESTING_LINE)
    if testing >= 0 and (not training or testing > training[-1].start()):
        return "testing"
    if training:
        epoch, epochs, eta = training[-1].groups()
        return f"epoch {epoch}/{epochs}, eta {eta}"
    return ""


def _short(key):
    """``base2new/train_base/shapes_a/shots_2/CoOp/cpu_tiny/seed1`` -> ``train_base shapes_a CoOp seed1``."""
    parts = key.split("/")
    return " ".join(parts[1:3] + parts[-3:-2] + parts[-1:]) if len(parts) >= 6 else key


def running_text(started, output_file, now=None):
    """The bar's postfix: the run started first (its status and time so far) and how many more are running.
    ``started``: [(run, start time), ...]; ``output_file(run)``: where its output goes."""
    if not started:
        return ""
    now = time.time() if now is None else now
    run, since = min(started, key=lambda item: item[1])
    status = run_status(output_file(run))
    text = f"{_short(run.key)} ({status + ', ' if status else ''}{int(now - since)} s)"
    if len(started) > 1:
        text += f" +{len(started) - 1} running"
    return text


class RunsProgress:
    """A bar over the runs that execute (i/N, elapsed, rate and ETA over runs) whose postfix follows the runs in
    progress, refreshed by a background thread: a serial run blocks the scheduler until it ends, and its epochs
    should still show. ``started()`` returns [(run, start time), ...] of the runs in progress.

    Runs settled without running (finished before, or blocked) are taken off the bar's total, not counted as
    progress: a resumed plan whose first 40 runs are done would otherwise show 40 runs in a second, a rate
    of thousands an hour and an ETA of seconds. The bar's description counts them."""

    def __init__(self, total, started, output_file, enabled=True, file=None, refresh_seconds=REFRESH_SECONDS):
        self.bar = tqdm(total=total, unit="run", disable=not enabled, dynamic_ncols=True, file=file)
        self._started, self._output_file, self._refresh_seconds = started, output_file, refresh_seconds
        self._done = threading.Event()
        self._without_running = 0
        self._thread = None
        if enabled:
            self._thread = threading.Thread(target=self._follow, name="runs-progress", daemon=True)
            self._thread.start()

    def _follow(self):
        while not self._done.wait(self._refresh_seconds):
            self.bar.set_postfix_str(running_text(self._started(), self._output_file))

    def update(self, count):
        """``count`` runs have ended."""
        if count:
            self.bar.update(count)

    def settled_without_running(self, count):
        """``count`` runs took no time (finished before, or blocked): off the total, so rate and ETA are the
        runs' that execute."""
        if count:
            self.bar.total -= count
            self._without_running += count
            self.bar.set_description_str(f"{self._without_running} settled without running", refresh=False)
            self.bar.refresh()

    def close(self):
        self._done.set()
        if self._thread is not None:
            self._thread.join()
        self.bar.close()

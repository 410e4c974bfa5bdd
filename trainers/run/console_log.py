"""``setup_logger``: tee stdout and stderr to ``<output>/log.txt``, with Dassl's file naming.

Owned by the project under both runtimes: Dassl's ``Logger`` tees stdout only and closes the stream it wraps when
it is garbage-collected (under pytest that is the capture file), so several runs in one process break.
Progress bars go to the terminal only (``progress_bar``): a bar's carriage returns never enter a log.
"""
import os
import sys
import time

from tqdm import tqdm


class Tee:
    def __init__(self, stream, fpath):
        self.stream = stream
        self.file = open(fpath, "a")

    def write(self, msg):
        # Both flushed: a run's console output is often a file (the pipeline's pipeline_output.txt, a Slurm
        # log), which Python would buffer for kilobytes; the pipeline's progress bar reads the epoch from it.
        self.stream.write(msg)
        self.stream.flush()
        self.file.write(msg)
        self.file.flush()

    def flush(self):
        self.stream.flush()
        self.file.flush()

    def isatty(self):
        return False

    def close(self):
        self.file.close()


def setup_logger(output=None):
    if output is None:
        return
    if output.endswith(".txt") or output.endswith(".log"):
        fpath = output
    else:
        fpath = os.path.join(output, "log.txt")
    if os.path.exists(fpath):
        fpath += time.strftime("-%Y-%m-%d-%H-%M-%S")  # keep earlier logs, as Dassl does
    os.makedirs(os.path.dirname(os.path.abspath(fpath)), exist_ok=True)
    # A second call (e.g. several runs in one process) replaces the file, never nests tees.
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if isinstance(stream, Tee):
            stream.close()
            stream = stream.stream
        setattr(sys, name, Tee(stream, fpath))


def terminal_stream():
    """stderr as it was before any tee: where progress bars go, so that they never enter ``log.txt``."""
    stream = sys.stderr
    while isinstance(stream, Tee):
        stream = stream.stream
    return stream


def progress_bar(iterable, enabled=True):
    """A tqdm bar on the terminal only: none in log files, none when stderr is redirected to a file."""
    stream = terminal_stream()
    return tqdm(iterable, file=stream, disable=not (enabled and stream.isatty()), dynamic_ncols=True)

"""``setup_logger``: tee stdout and stderr to ``<output>/log.txt``, with Dassl's file naming.

Owned by the project under both runtimes: Dassl's ``Logger`` tees stdout only and closes the stream it wraps when
it is garbage-collected (under pytest that is the capture file), so several runs in one process break.
Progress bars go to the terminal only (``progress_bar``): a bar's carriage returns never enter a log.
"""
import os
import sys
import time

from tqdm import tqdm

from datasets.atomic_write import disk_is_full

_failed_logs = set()  # log files a write failed on, in this process


class Tee:
    """Writes to ``stream`` and to the log file. A log write that fails (a full disk) stops the logging, said in
    one line on ``stream``: the run goes on, and its next checkpoint write names the disk (exit status 2)."""

    def __init__(self, stream, fpath):
        self.stream = stream
        self.fpath = fpath
        self.file = open(fpath, "a")
        self.pending_note = ""  # why the log stopped, said once the line being written ends

    def write(self, msg):
        # Both flushed: a run's console output is often a file (the pipeline's pipeline_output.txt, a Slurm
        # log), which Python would buffer for kilobytes; the pipeline's progress bar reads the epoch from it.
        self.stream.write(msg)
        self._to_file(msg, at_line_start=msg.endswith("\n"))
        if self.pending_note and msg.endswith("\n"):  # the log failed inside this line: said after it
            self.stream.write(f"{self.pending_note}\n")
            self.pending_note = ""
        self.stream.flush()

    def flush(self):
        self.stream.flush()
        self._to_file("")

    def _to_file(self, msg, at_line_start=True):
        if self.file is None:
            return
        try:
            self.file.write(msg)
            self.file.flush()
        except OSError as err:
            broken, self.file = self.file, None
            try:
                broken.close()  # its buffered rest is lost; closed now, it cannot fail again at exit
            except OSError:
                pass
            if self.fpath not in _failed_logs:  # stdout's and stderr's tees write the same file: said once
                _failed_logs.add(self.fpath)
                reason = "no space left on its file system" if disk_is_full(os.path.dirname(self.fpath), err) \
                    else (err.strerror or str(err))
                note = f"Could not write the log {self.fpath} ({reason}); the rest of this output is not logged there"
                if at_line_start:
                    self.stream.write(f"{note}\n")
                else:  # print() writes a line's text, then its newline: the note waits for the newline
                    self.pending_note = note

    def isatty(self):
        return False

    def close(self):
        if self.pending_note:  # closed inside a line: the note ends it
            self.stream.write(f"\n{self.pending_note}\n")
            self.pending_note = ""
        if self.file is not None:
            try:
                self.file.close()
            except OSError:
                pass
            self.file = None


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

"""Runs executed inside the pipeline's own process, one at a time: the demo (no interpreter start-up per run)
and the tests' stand-ins for train.py."""
import contextlib
import datetime
import sys
import traceback

from tools.pipeline.executors.base import Executor, Exit


class InlineExecutor(Executor):
    """Calls ``run_one(run, output_file) -> exit status`` for each run, one at a time, in this process."""

    def __init__(self, run_one):
        self.run_one = run_one
        self._ended = []

    def has_room(self):
        return not self._ended

    def start(self, run, output_file):
        self._ended.append((run, Exit(self.run_one(run, output_file))))
        return ""

    def wait(self, say):
        ended, self._ended = self._ended, []
        return ended


def as_executor(executor):
    """An ``Executor`` as it is; a plain ``(run, output_file) -> exit status`` callable runs inline."""
    if isinstance(executor, Executor):
        return executor
    if callable(executor):
        return InlineExecutor(executor)
    raise TypeError(f"Not an executor: {executor!r}")


def train_in_process(run, output_file):
    """``train.main(ARGV)`` in this process: the code path of ``python train.py ARGV`` without a new interpreter
    (seconds per run on a small machine). Returns 0, or 1 after printing the traceback to the run's output."""
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


class InProcessExecutor(InlineExecutor):
    """Every run through ``train.main`` in this process, one at a time (the demo)."""

    def __init__(self):
        super().__init__(train_in_process)


def _untee():
    """train.py tees stdout/stderr into the run's log.txt: restore the streams it wrapped."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        while hasattr(stream, "stream") and hasattr(stream, "file"):
            stream.file.close()
            stream = stream.stream
        setattr(sys, name, stream)

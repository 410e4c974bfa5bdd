"""Stop signals end a run within seconds, keeping its last complete checkpoint: SIGTERM (what ``scancel`` and the
pipeline send), SIGINT (Ctrl-C) and SIGUSR2 (what Slurm sends before a time limit with ``--signal=USR2@<s>``).

While ``stop_on_signals()`` is active, each of them raises ``StopRequested`` (a ``KeyboardInterrupt``, so no
``except Exception`` swallows it) in the main thread; during a checkpoint or record write the raise waits until
the files are whole (``datasets.atomic_write.uninterrupted``). ``train.py`` then exits with 128 + the signal's
number and one line: run the same command again to resume. A signal that whoever started train.py ignores
(SIG_IGN: the Slurm job of the pipeline leaves Slurm's USR2 to submitit, which requeues the job) stays ignored.
Forked children (data workers) get Python's standard handlers back, as they had them without this module.
"""
from __future__ import annotations

import contextlib
import os
import signal
import threading
from typing import Iterator, Optional

from datasets.atomic_write import defer_while_writing

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR2)
_previous = {}  # signal -> the handler stop_on_signals() replaced, while it is active
_requested = []  # the signals received while it was active (the first one is the stop's)


class StopRequested(KeyboardInterrupt):
    """The run was asked to stop by a signal."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"stopped by {signal.Signals(signum).name}")

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


def requested() -> Optional[int]:
    """The signal that asked the run to stop, or None."""
    return _requested[0] if _requested else None


def _stop(signum):
    raise StopRequested(signum)


def _handle(signum, frame):
    _requested.append(signum)
    if len(_requested) > 1:
        return  # already stopping: a second signal (scancel sends one to every process) changes nothing
    if not defer_while_writing(lambda: _stop(signum)):
        _stop(signum)


def _restore_in_child():
    for signum in _previous:
        signal.signal(signum, signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL)
    _previous.clear()


os.register_at_fork(after_in_child=_restore_in_child)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Handle the stop signals as above (from the main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread() or _previous:
        yield
        return
    _requested.clear()
    for signum in STOP_SIGNALS:
        if signal.getsignal(signum) is not signal.SIG_IGN:
            _previous[signum] = signal.signal(signum, _handle)
    try:
        yield
    finally:
        for signum, handler in _previous.items():
            signal.signal(signum, handler)
        _previous.clear()

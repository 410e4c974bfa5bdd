"""The executor seam: what every executor offers the scheduler in ``tools/pipeline/runner.py``.

A new executor subclasses ``Executor`` and defines ``has_room``, ``start`` and ``wait``; the other methods have
defaults that fit an executor whose runs end with the pipeline.
"""
from __future__ import annotations

import signal
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, List, Optional, Sequence, Set, Tuple

from tools.pipeline.executors.order import plan_order

if TYPE_CHECKING:
    from tools.pipeline.plan import Run

Say = Callable[[str], None]  # prints one line of the pipeline's log


@dataclass(frozen=True)
class Exit:
    """How a run's process ended: its exit status, or ``None`` and why, when it left none (a cancelled job)."""

    status: Optional[int]
    reason: str = ""

    def describe(self) -> str:
        if self.reason:
            return self.reason
        if self.status is not None and self.status < 0:
            try:
                return f"killed by signal {signal.Signals(-self.status).name}"
            except ValueError:
                return f"killed by signal {-self.status}"
        stopped_by = stop_signal_name(self.status)
        if stopped_by:  # train.py ends with 128 + the signal when it is stopped (trainers/run/errors.py)
            return f"stopped by {stopped_by} (exit status {self.status})"
        return f"exit status {self.status}"


def stop_signal_name(status):
    """``SIGTERM`` for the exit status 143 of a process that a stop signal ended, as train.py exits; else ""."""
    if status is None or status <= 128:
        return ""
    try:
        name = signal.Signals(status - 128).name
    except ValueError:
        return ""
    return name if name in ("SIGTERM", "SIGINT", "SIGUSR2", "SIGHUP", "SIGKILL") else ""


class Executor(ABC):
    """Starts planned runs and says when each one ended; the scheduler decides which run may start and when.

    ``ordering(runs)`` ranks a plan's runs: among the runs ready at the same time, the lowest rank starts first.
    """

    ordering = staticmethod(plan_order)

    @abstractmethod
    def has_room(self) -> bool:
        """Whether one more run may start now."""

    @abstractmethod
    def start(self, run: Run, output_file: str) -> str:
        """Start ``run``, its output appended to ``output_file``; returns a note for the log line ("" for none)."""

    @abstractmethod
    def wait(self, say: Say) -> List[Tuple[Run, Exit]]:
        """Block until at least one started run has ended; returns ``[(run, Exit), ...]``."""

    def check(self) -> None:
        """Raise ``ConfigError`` if runs cannot execute here, before any starts (no Slurm on this machine)."""

    def adopt(self, run: Run, output_file: str) -> Optional[str]:
        """Follow ``run`` if an earlier invocation left it running (a queued Slurm job); returns a note, or None
        when there is nothing to follow and the run must be started."""
        return None

    def stop(self, say: Say) -> None:
        """The pipeline is interrupted: end or hand over whatever is still running."""

    def describe(self) -> List[str]:
        """Comment lines for ``--dry-run`` saying where the runs would execute (none for the serial default)."""
        return []

    def dry_run_lines(self, runs: Sequence[Run], finished: Set[str]) -> List[str]:
        """``--dry-run``: every run's command in the plan's order; ``finished`` (keys) appear as comments."""
        lines = list(self.describe())
        for run in runs:
            line = run.command_line()
            lines.append(f"# finished, skipped: {line}" if run.key in finished else line)
        return lines

"""The executor seam: what every executor offers the scheduler in ``tools/pipeline/runner.py``."""
import signal
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Optional

from tools.pipeline.executors.order import plan_order


@dataclass(frozen=True)
class Exit:
    """How a run's process ended: its exit status, or ``None`` and why, when it left none (a cancelled job)."""

    status: Optional[int]
    reason: str = ""

    def describe(self):
        if self.reason:
            return self.reason
        if self.status is not None and self.status < 0:
            try:
                return f"killed by signal {signal.Signals(-self.status).name}"
            except ValueError:
                return f"killed by signal {-self.status}"
        return f"exit status {self.status}"


class Executor(ABC):
    """Starts planned runs and says when each one ended; the scheduler decides which run may start and when.

    ``ordering(runs)`` ranks a plan's runs: among the runs ready at the same time, the lowest rank starts first.
    """

    ordering = staticmethod(plan_order)

    @abstractmethod
    def has_room(self):
        """Whether one more run may start now."""

    @abstractmethod
    def start(self, run, output_file):
        """Start ``run``, its output appended to ``output_file``; returns a note for the log line ("" for none)."""

    @abstractmethod
    def wait(self, say):
        """Block until at least one started run has ended; returns ``[(run, Exit), ...]``."""

    def check(self):
        """Raise ``ConfigError`` if runs cannot execute here, before any starts (no Slurm on this machine)."""

    def adopt(self, run, output_file):
        """Follow ``run`` if an earlier invocation left it running (a queued Slurm job); returns a note, or None
        when there is nothing to follow and the run must be started."""
        return None

    def stop(self, say):
        """The pipeline is interrupted: end or hand over whatever is still running."""

    def describe(self):
        """Comment lines for ``--dry-run`` saying where the runs would execute (none for the serial default)."""
        return []

    def dry_run_lines(self, runs, finished):
        """``--dry-run``: every run's command in the plan's order; ``finished`` (keys) appear as comments."""
        lines = list(self.describe())
        for run in runs:
            line = run.command_line()
            lines.append(f"# finished, skipped: {line}" if run.key in finished else line)
        return lines

"""train.py as child processes of the pipeline, which never outlive it: the serial executor (one run at a time,
the default) and the local one (several at a time, each on its own GPU, or on the CPU)."""
import ctypes
import datetime
import os
import signal
import subprocess
import sys
import time

from tools.pipeline.executors.base import Executor, Exit
from tools.pipeline.executors.devices import UNASSIGNED, DeviceSlots
from tools.pipeline.executors.order import longest_chain_first
from trainers.run.paths import REPO_DIR
from trainers.run.threads import THREADS_ENV, choose_threads

POLL_SECONDS = 0.2  # a run lasts minutes; polling its process costs nothing
STOP_GRACE_SECONDS = 10  # after SIGTERM, before SIGKILL


def die_with_parent(parent_pid, ignored=()):
    """A ``preexec_fn``: the kernel sends the child SIGTERM when the thread that started it ends (Linux;
    elsewhere a no-op), so children are started from the main thread only. ``ignored`` signals are ignored."""
    def prepare_child():
        for signum in ignored:
            signal.signal(signum, signal.SIG_IGN)
        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            return
        if os.getppid() != parent_pid:  # the parent died before the signal was armed
            os._exit(1)
    return prepare_child


def write_header(out, text):
    """A line of the pipeline's own in a run's output file: each attempt of the run starts with one."""
    out.write(f"===== {datetime.datetime.now().isoformat(timespec='seconds')} {text}\n")
    out.flush()


def spawn_train(python, argv, out, env=None, ignored=()):
    """``python train.py ARGV`` from the repository root, stdout and stderr into the open file ``out``."""
    return subprocess.Popen([python, "train.py", *argv], cwd=REPO_DIR, stdout=out, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, env=env, preexec_fn=die_with_parent(os.getpid(), ignored))


class _Child:
    def __init__(self, run, process, out, device):
        self.run, self.process, self.out, self.device = run, process, out, device


class ProcessPool(Executor):
    """A train.py child per run, at most one per free slot of ``slots`` (a ``DeviceSlots``)."""

    def __init__(self, slots, python=sys.executable):
        self.slots = slots
        self.python = python
        self._children = []
        self._threads = None

    def child_threads(self):
        """``(threads, why)`` for each child: the CPU cores free when the first child starts, divided among the runs
        that go at once (trainers/run/threads.py); ``OMP_NUM_THREADS`` set for the pipeline wins."""
        if self._threads is None:
            self._threads = choose_threads(jobs=self.slots.size)
        return self._threads

    def environment(self, device):
        """The child's environment on ``device``: the pipeline's, with its share of the CPU threads."""
        env = dict(os.environ)
        env[THREADS_ENV] = str(self.child_threads()[0])
        return env

    def where(self, device):
        return ""

    def has_room(self):
        return self.slots.free()

    def start(self, run, output_file):
        device = self.slots.take()
        out = open(output_file, "a")
        where = self.where(device)
        try:
            threads, why = self.child_threads()
            write_header(out, f"pipeline{' ' + where if where else ''}, {THREADS_ENV}={threads} ({why}): "
                              f"{run.command_line()}")
            process = spawn_train(self.python, run.argv, out, env=self.environment(device))
        except BaseException:
            out.close()
            self.slots.give_back(device)
            raise
        self._children.append(_Child(run, process, out, device))
        return where

    def wait(self, say):
        while True:
            ended = [child for child in self._children if child.process.poll() is not None]
            if ended:
                for child in ended:
                    self._release(child)
                return [(child.run, Exit(child.process.returncode)) for child in ended]
            time.sleep(POLL_SECONDS)

    def stop(self, say):
        """SIGTERM to every child, SIGKILL to those still there after a grace period; nothing survives."""
        children, deadline = list(self._children), time.time() + STOP_GRACE_SECONDS
        for child in children:
            child.process.terminate()
        for child in children:
            try:
                child.process.wait(timeout=max(0.0, deadline - time.time()))
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()
            self._release(child)
        if children:
            say(f"stopped {len(children)} run{'s' if len(children) > 1 else ''}: "
                + ", ".join(child.run.key for child in children))

    def _release(self, child):
        child.out.close()
        self.slots.give_back(child.device)
        self._children.remove(child)


class SerialExecutor(ProcessPool):
    """One run at a time in the plan's order, in the pipeline's own environment: the default."""

    def __init__(self, python=sys.executable):
        super().__init__(DeviceSlots([UNASSIGNED], per_device=1), python)


class LocalExecutor(ProcessPool):
    """Several runs at a time, the longest chains first; a run on a GPU sees only that GPU
    (``CUDA_VISIBLE_DEVICES``); each child gets an equal share of the free CPU cores as its threads."""

    ordering = staticmethod(longest_chain_first)

    def environment(self, device):
        env = super().environment(device)
        if device is not UNASSIGNED:
            env["CUDA_VISIBLE_DEVICES"] = device
        return env

    def where(self, device):
        return "" if device is UNASSIGNED else f"on GPU {device}"

    def describe(self):
        return [f"# local executor: {self.slots.describe()}; a run starts as soon as the runs it needs have "
                "finished and a slot is free, the longest chains of runs first"]

"""How many CPU threads a run's torch uses: the cores free for it, never more.

torch's default, one intra-op thread per core, is right on an idle machine; beside one other busy process its
threads wait for each other at every barrier, and a small CPU run took 6-7x longer than with one thread
(docs/SPEED.md). So a CPU run takes, in this order:

1. ``--threads N`` (train.py's flag);
2. ``OMP_NUM_THREADS``, as torch itself would (the pipeline sets it for each child: its share, below);
3. the cores free for this process: the cores it may run on (``os.sched_getaffinity``) minus the processes
   already keeping cores busy (the 1-minute load average, rounded), at least one.

The pipeline measures the free cores once, before its first child starts (a child's own measure would count the
run before it, still in the load average), and gives each child ``free // concurrent runs`` threads through
``OMP_NUM_THREADS``. This module imports nothing heavy: the pipeline and the early checks use it too.
"""
import os

THREADS_ENV = "OMP_NUM_THREADS"


def available_cores():
    """The cores this process may run on (its affinity mask, e.g. a container's or ``taskset``'s share)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def busy_cores():
    """Cores other processes keep busy: the 1-minute load average, rounded (0 where the system has none)."""
    try:
        return round(os.getloadavg()[0])
    except (AttributeError, OSError):
        return 0


def free_cores():
    """``(free, available, busy)``: the cores free for this process, at least 1, and what that was made of."""
    available, busy = available_cores(), busy_cores()
    return max(1, available - busy), available, busy


def env_threads(environ=None):
    """``OMP_NUM_THREADS`` as a positive int, else None (unset, or a value torch would not take either)."""
    value = (os.environ if environ is None else environ).get(THREADS_ENV, "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else None


def choose_threads(requested=0, environ=None, jobs=1):
    """``(threads, why)``: the thread count for one of ``jobs`` concurrent CPU runs, and the log's reason."""
    if requested and requested > 0:
        return requested, "--threads"
    from_env = env_threads(environ)
    if from_env is not None:
        return from_env, THREADS_ENV
    free, available, busy = free_cores()
    share = max(1, free // max(1, jobs))
    why = f"{available} cores available, load {busy}"
    return share, why + (f", {free} free for {jobs} concurrent runs" if jobs > 1 else "")


def threads_line(threads, why):
    return (f"CPU threads: {threads} ({why}; --threads N or {THREADS_ENV}=N to choose)")

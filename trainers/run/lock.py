"""One writer per run directory: ``train.py`` holds an exclusive lock on ``<output dir>/.lock`` while it runs.

The lock is an ``flock`` on an open file, so the kernel releases it when the process dies, however it dies
(kill -9 included): a lock file left behind never blocks a rerun.
"""
import contextlib
import fcntl
import os

LOCK_FILE = ".lock"


class RunLockedError(RuntimeError):
    """Another process is writing the same run directory."""


@contextlib.contextmanager
def run_lock(output_dir):
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, LOCK_FILE)
    with open(path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "unknown"
            raise RunLockedError(f"{output_dir} is being written by another process (pid {holder}); wait for it "
                                 "to finish or stop it, then run this command again") from None
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)

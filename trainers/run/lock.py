"""One writer per run directory: ``train.py`` holds an exclusive lock on ``<output dir>/.lock`` while it runs.

The lock is an ``flock`` on an open file, so the kernel releases it when the process dies, however it dies
(kill -9 included): a lock file left behind never blocks a rerun. It belongs to the process that trains, not to
its children: an ``flock`` is shared by every copy of its file descriptor, and data-loader workers forked from
the trainer would otherwise hold it for the seconds they outlive a killed trainer. Each forked child closes its
copy at once (``os.register_at_fork``); a child that execs never gets one (the descriptor is close-on-exec).
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from typing import Iterator

LOCK_FILE = ".lock"
_HELD = {}  # descriptor -> the pid that took the lock through it


class RunLockedError(RuntimeError):
    """Another process is writing the same run directory."""


def _close_inherited_locks():
    """In a forked child: close the copies of the parent's lock descriptors (the lock stays the parent's)."""
    for fd in list(_HELD):
        try:
            os.close(fd)
        except OSError:
            pass
    _HELD.clear()


os.register_at_fork(after_in_child=_close_inherited_locks)


def _processes_with_file_open(path, skip_fd):
    """The pids whose open descriptors include ``path`` (Linux's /proc; others' processes may be unreadable)."""
    try:
        target = os.stat(path)
    except OSError:
        return []
    found = []
    for name in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not name.isdigit():
            continue
        fd_dir = f"/proc/{name}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            if int(name) == os.getpid() and int(fd) == skip_fd:
                continue  # the descriptor this process just opened to try the lock
            try:
                st = os.stat(os.path.join(fd_dir, fd))
            except OSError:
                continue
            if (st.st_dev, st.st_ino) == (target.st_dev, target.st_ino):
                found.append(int(name))
                break
    return found


def _holder(path, fd):
    """Who holds the lock, as truthfully as this machine can tell."""
    try:
        with open(path) as f:
            pid, _, host = f.read().strip().partition(" ")
    except OSError:
        pid, host = "", ""
    if host and host != socket.gethostname():
        return f"pid {pid} on host {host}"
    holders = _processes_with_file_open(path, fd)
    if holders:
        return ", ".join(f"pid {p}" for p in holders)
    return f"pid {pid}" if pid else "a process this user cannot see"


@contextlib.contextmanager
def run_lock(output_dir: str) -> Iterator[None]:
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, LOCK_FILE)
    owner = os.getpid()
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunLockedError(f"{output_dir} is being written by another process ({_holder(path, fd)}); wait "
                                 "for it to finish or stop it, then run this command again") from None
        _HELD[fd] = owner
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{owner} {socket.gethostname()}".encode(), 0)
        yield
    finally:
        # A forked child that unwinds this frame has closed its copy already: only the owner unlocks and closes.
        if os.getpid() == owner:
            _HELD.pop(fd, None)
            os.close(fd)  # releases the lock

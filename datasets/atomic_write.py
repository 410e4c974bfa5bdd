"""Files that appear whole or not at all: written to a temporary file beside the target, then renamed.

The temporary file comes from ``tempfile.mkstemp`` in the target's folder, so concurrent writers never share
one, even from different machines on a shared file system (a name made of the pid alone can collide there);
the rename is atomic because both names are on the same file system.

A stop signal handled by ``defer_while_writing`` (``trainers/run/stop_signals.py``) waits until the write in
progress is whole or removed (and a group of writes, ``uninterrupted()``, until the last one is): a stop never
leaves a temporary file, nor half a checkpoint of a model with several parts.
"""
import contextlib
import errno
import os
import tempfile

_writing = [0]  # the depth of uninterrupted() sections of this process
_deferred = []  # what a stop signal asked for during one, done when the outermost ends


@contextlib.contextmanager
def uninterrupted():
    """A section that a deferred stop (``defer_while_writing``) does not interrupt."""
    _writing[0] += 1
    try:
        yield
    finally:
        _writing[0] -= 1
        if not _writing[0] and _deferred:
            action = _deferred.pop(0)
            _deferred.clear()
            action()  # raises: the stop goes on from here


def defer_while_writing(action):
    """Postpone ``action`` to the end of the ``uninterrupted()`` section in progress; False when there is none."""
    if not _writing[0]:
        return False
    _deferred.append(action)
    return True


def replace_atomically(path, write, what="the file"):
    """Call ``write(tmp_path)`` and move the result to ``path``; nothing is left behind if ``write`` raises. A write
    that fails for the file system's sake (a full disk above all) is one ``OSError`` naming ``what`` and ``path``."""
    with uninterrupted():
        folder, name = os.path.split(os.path.abspath(path))
        try:
            handle, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
        except OSError as err:
            raise write_error(path, what, err) from None
        os.close(handle)
        try:
            write(tmp)
            os.replace(tmp, path)
        except (OSError, RuntimeError) as err:
            failure = write_error(path, what, err)
            if failure is None:
                raise
            raise failure from None
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)


FULL_BELOW_BYTES = 1 << 20  # what is left on a file system that a failed write has just filled


def disk_is_full(folder, err=None):
    """Whether ``err`` says the disk is full (or over quota), or the file system holding ``folder`` is."""
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    try:
        stat = os.statvfs(folder)
    except OSError:
        return False
    return stat.f_bavail * stat.f_frsize < FULL_BELOW_BYTES


def write_error(path, what, err):
    """The one-line ``OSError`` for a failed write of ``path``, or None when ``err`` is not about the file system
    (a bug in the writer keeps its traceback). torch reports a full disk as a ``RuntimeError`` of its zip writer."""
    folder = os.path.dirname(os.path.abspath(path))
    if disk_is_full(folder, err):
        return OSError(f"Could not write {what} {path}: no space left on its file system; free some space there "
                       "(or choose another folder) and run the same command again (an earlier version of the "
                       "file, if any, is intact)")
    if isinstance(err, OSError) or "inline_container" in str(err) or "file write failed" in str(err):
        reason = err.strerror if isinstance(err, OSError) and err.strerror else " ".join(str(err).split())[:200]
        return OSError(f"Could not write {what} {path} ({reason}); an earlier version of the file, if any, is intact")
    return None


def remove_leftovers(folder):
    """Delete the temporary files that writes cut by a kill -9 left in ``folder`` (never read; called by the
    folder's one writer, under its lock). Returns their names."""
    names = [n for n in os.listdir(folder) if n.startswith(".") and n.endswith(".tmp")] if os.path.isdir(folder) else []
    for name in names:
        os.remove(os.path.join(folder, name))
    return names

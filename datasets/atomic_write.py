"""Files that appear whole or not at all: written to a temporary file beside the target, then renamed.

The temporary file comes from ``tempfile.mkstemp`` in the target's folder, so concurrent writers never share
one, even from different machines on a shared file system (a name made of the pid alone can collide there);
the rename is atomic because both names are on the same file system.
"""
import os
import tempfile


def replace_atomically(path, write):
    """Call ``write(tmp_path)`` and move the result to ``path``; nothing is left behind if ``write`` raises."""
    folder, name = os.path.split(os.path.abspath(path))
    handle, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
    os.close(handle)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)

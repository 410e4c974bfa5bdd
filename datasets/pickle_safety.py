"""Reading a pickled file never runs code from it, unless the user says they trust the file.

A pickle names the functions that rebuild its objects, and unpickling calls them: a checkpoint or a cache can
run any code as it loads (``os.system`` is one name away). So checkpoints are read by torch's weights-only
unpickler with an allow-list of what the CoOp family's own checkpoints hold (``trainers/run/checkpoints.py``),
and Datum caches by an unpickler that admits ``Datum`` alone (``datasets/datum_pickle.py``). A file that asks
for anything else is refused before that thing is called, in one line naming the file and what it asked for.

``TRUST_PICKLED_FILES True`` (a config key) lets a run read such files in full; every file read that way is
named in the run's log and listed in its ``results.json`` (``trusted_pickled_files``).
"""

_trusting = [False]
_trusted_reads = []  # files this process read in full, each once, in the order of their first read


def trust_pickled_files(enabled):
    """Set for the run about to start (``trainers/launch/main.py``); forgets the files read by an earlier run."""
    _trusting[0] = bool(enabled)
    _trusted_reads.clear()


def trusting():
    return _trusting[0]


def note_trusted_read(path):
    if str(path) in _trusted_reads:  # read again (the input check, then the load): said once
        return
    print(f"Note: {path} was unpickled in full (TRUST_PICKLED_FILES True): it could have run code")
    _trusted_reads.append(str(path))


def trusted_reads():
    return list(_trusted_reads)


class UntrustedPickleError(ValueError):
    """A pickled file asked for a class or function outside the allow-list; nothing of it was called."""

    def __init__(self, path, wanted):
        super().__init__(
            f"{path} asks to unpickle {wanted}, which this kind of file never holds (loading it could run code "
            "from the file); it was not loaded. If you trust where the file comes from, rerun with "
            "TRUST_PICKLED_FILES True")
        self.path, self.wanted = path, wanted

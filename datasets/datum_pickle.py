"""Pickles of Datum lists in Dassl's format (few-shot caches, ``imagenet/preprocessed.pkl``).

A file is a dict whose list values hold Datums pickled under ``dassl.data.datasets.base_dataset.Datum`` with the
instance state ``{_impath, _label, _domain, _classname}`` (docs/DATASETS.md). We read such files without
Dassl and write files Dassl can read. Extra keys we add (``dataset_dir`` and friends) are ignored by Dassl.

Such a file holds Datums, dicts, lists, strings and numbers: the unpickler admits the ``Datum`` class and no other
name, so a file that would call anything else is refused before it is called (``datasets/pickle_safety.py``).
"""
import os
import pickle

from datasets.atomic_write import replace_atomically
from datasets.pickle_safety import UntrustedPickleError, note_trusted_read, trusting
from datasets.toolbox import HAVE_DASSL, Datum, make_datum

DASSL_DATUM_MODULE = "dassl.data.datasets.base_dataset"
# Where a Datum may be pickled from: Dassl's class, and the built-in runtime's (files of older releases).
DATUM_NAMES = {(DASSL_DATUM_MODULE, "Datum"), (Datum.__module__, Datum.__qualname__)}


class UnreadableCacheError(ValueError):
    """The file is empty, truncated or not such a pickle: a cache that can be computed again, as if missing."""

    def __init__(self, path, reason):
        super().__init__(f"{path} cannot be read ({reason}); delete it to have it rebuilt")
        self.reason = reason


class DasslDatumUnpickler(pickle.Unpickler):
    """Resolves Dassl's Datum class to the seam's Datum, so Dassl-written files load without Dassl; refuses every
    other class or function (``trust=True``: finds them as pickle does, for a file the user trusts)."""

    def __init__(self, f, path="", trust=False):
        super().__init__(f)
        self.path, self.trust = path or getattr(f, "name", "the file"), trust
        self.trusted = []  # what a trusted file named beyond Datum

    def find_class(self, module, name):
        if (module, name) in DATUM_NAMES:
            return Datum
        if not self.trust:
            raise UntrustedPickleError(self.path, f"{module}.{name}")
        self.trusted.append(f"{module}.{name}")
        return super().find_class(module, name)


def write_as_dassl(f, data):
    """Pickle ``data`` into ``f`` so that its Datums load as Dassl's class.

    The C pickler only names classes importable under that name, and the pure-Python pickler is ten times
    slower (half a minute for ImageNet's 1.3M Datums). Protocol 2 writes a class reference once, as plain text
    (opcode ``c``, then module and name each ended by a newline), so we pickle our Datum and swap the path.
    """
    raw = memoryview(pickle.dumps(data, protocol=2, fix_imports=False))
    ours = f"c{Datum.__module__}\n{Datum.__qualname__}\n".encode()
    at = raw.obj.find(ours)
    if at < 0:  # no Datum in data
        f.write(raw)
        return
    f.write(raw[:at])
    f.write(f"c{DASSL_DATUM_MODULE}\nDatum\n".encode())
    f.write(raw[at + len(ours):])


def save_datum_pickle(path, data):
    """Write ``data`` atomically (a half-written cache would be loaded as if complete next time)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)

    def write(tmp):
        with open(tmp, "wb") as f:
            if HAVE_DASSL:
                pickle.dump(data, f, protocol=pickle.HIGHEST_PROTOCOL)
            else:
                write_as_dassl(f, data)
    replace_atomically(path, write, "the cache")


def load_datum_pickle(path, dataset_dir):
    """The stored dict with every Datum path moved under ``dataset_dir`` when it was written elsewhere."""
    try:
        with open(path, "rb") as f:
            unpickler = DasslDatumUnpickler(f, path, trust=trusting())
            data = unpickler.load()
    except UntrustedPickleError:
        raise
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError, ValueError) as error:
        reason = "empty" if os.path.getsize(path) == 0 else f"truncated or not a pickle: {error!r}"
        raise UnreadableCacheError(path, reason) from None
    if not isinstance(data, dict):
        raise UnreadableCacheError(path, "not a dict of Datum lists")
    if unpickler.trusted:
        note_trusted_read(path)
    old_dir = data.get("dataset_dir") or guess_old_dataset_dir(data, dataset_dir)
    if old_dir and os.path.normpath(old_dir) != os.path.normpath(dataset_dir):
        print(f"{path} was written under {old_dir}; re-rooting its paths to {dataset_dir}")
        data = {key: [reroot(d, old_dir, dataset_dir) for d in value] if isinstance(value, list) else value
                for key, value in data.items()}
    return data


def guess_old_dataset_dir(data, dataset_dir):
    """For a Dassl-written file: find this dataset's folder name inside the stored absolute paths."""
    first = next((items[0] for items in data.values() if isinstance(items, list) and items), None)
    if first is None or first.impath.startswith(dataset_dir + os.sep):
        return None
    marker = os.sep + os.path.basename(dataset_dir) + os.sep
    cut = first.impath.rfind(marker)
    return first.impath[:cut + len(marker) - 1] if cut >= 0 else None


def relative_to(path, directory):
    """``os.path.relpath`` with a fast path: ImageNet has 1.3M paths and relpath costs ~5 us each."""
    prefix = directory + os.sep
    if path.startswith(prefix):
        rest = path[len(prefix):]
        # Only a plain 'a/b/c' tail equals relpath's answer; anything unusual takes the slow, exact route.
        if rest and not rest.endswith(os.sep) and (os.sep * 2) not in rest and (os.sep + ".") not in (os.sep + rest):
            return rest
    return os.path.relpath(path, directory)


def reroot(datum, old_dir, new_dir):
    return make_datum(impath=os.path.join(new_dir, relative_to(datum.impath, old_dir)), label=datum.label,
                 domain=datum.domain, classname=datum.classname)

"""One fake Dassl for the tests: Dassl's ``Datum`` class importable at Dassl's module path for the length of a
``with`` block, so that a test can write and read pickles exactly as Dassl does without Dassl installed (and,
with Dassl installed, without touching the real one)."""
import contextlib
import os
import pickle
import sys
import types

DASSL_MODULE = "dassl.data.datasets.base_dataset"
DASSL_MODULES = ("dassl", "dassl.data", "dassl.data.datasets", DASSL_MODULE)


@contextlib.contextmanager
def fake_dassl_installed():
    """A stand-in for ``dassl.data.datasets.base_dataset.Datum``, importable only inside the ``with`` block.

    Pickling its instances with the standard pickler yields byte-for-byte what Dassl writes; the modules are
    removed afterwards so nothing else mistakes them for an installed Dassl.
    """
    class Datum:
        def __init__(self, impath="", label=0, domain=0, classname=""):
            self._impath, self._label, self._domain, self._classname = impath, label, domain, classname

    Datum.__module__, Datum.__qualname__ = DASSL_MODULES[-1], "Datum"
    saved = {name: sys.modules.get(name) for name in DASSL_MODULES}
    try:
        for name in DASSL_MODULES:
            sys.modules[name] = types.ModuleType(name)
        sys.modules[DASSL_MODULES[-1]].Datum = Datum
        yield Datum
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def write_dassl_pickle(path, lists, protocol=pickle.HIGHEST_PROTOCOL):
    """``{key: [(impath, label, classname), ...]}`` pickled as Dassl would (Datum under Dassl's class path)."""
    with fake_dassl_installed() as Datum:
        data = {key: [Datum(impath, label, 0, cname) for impath, label, cname in items]
                for key, items in lists.items()}
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            pickle.dump(data, f, protocol=protocol)


def read_as_dassl(path):
    """Unpickle ``path`` the way Dassl would (its Datum class importable): ``{key: [(impath, label, cname)]}``."""
    with fake_dassl_installed() as Datum:
        with open(path, "rb") as f:
            data = pickle.load(f)
        out = {}
        for key, value in data.items():
            if isinstance(value, list):
                assert all(type(d) is Datum for d in value)
                assert all(set(vars(d)) == {"_impath", "_label", "_domain", "_classname"} for d in value)
                out[key] = [(d._impath, d._label, d._classname) for d in value]
        return out

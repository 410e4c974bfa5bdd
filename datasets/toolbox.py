"""The data half of the toolbox seam: Dassl's data API when Dassl is importable, the built-in one otherwise.

Readers and trainers import these names from here, never from ``dassl`` or ``datasets.runtime`` directly.
Set ``DPC_RUNTIME=builtin`` to use the built-in runtime even where Dassl is installed.
"""
import importlib.util
import os

HAVE_DASSL = os.environ.get("DPC_RUNTIME", "").lower() != "builtin" and importlib.util.find_spec("dassl") is not None

if HAVE_DASSL:
    from dassl.data import DataManager
    from dassl.data.data_manager import DatasetWrapper
    from dassl.data.datasets import DATASET_REGISTRY, DatasetBase, Datum, build_dataset
    from dassl.data.transforms import build_transform
    from dassl.data.transforms.transforms import AVAI_CHOICES as TRANSFORM_NAMES
    from dassl.utils import read_image
else:
    from datasets.runtime import (
        DATASET_REGISTRY,
        DataManager,
        DatasetBase,
        DatasetWrapper,
        Datum,
        build_dataset,
        build_transform,
        read_image,
    )
    from datasets.runtime.transforms import DASSL_CHOICES as TRANSFORM_NAMES

RUNTIME_NAME = "Dassl" if HAVE_DASSL else "built-in"


def runtime_location():
    """Where the runtime's code lives: the ``dassl`` package folder, or the built-in ``datasets/runtime``."""
    module = importlib.import_module("dassl" if HAVE_DASSL else "datasets.runtime")
    return os.path.dirname(os.path.abspath(module.__file__))


def check_transform_names(names):
    """Refuse an unknown ``INPUT.TRANSFORMS`` name with a message naming it (Dassl asserts without one)."""
    unknown = [name for name in names if name not in TRANSFORM_NAMES]
    if unknown:
        raise ValueError(f"INPUT.TRANSFORMS: unknown transform(s) {unknown}; choices are {list(TRANSFORM_NAMES)}")


def make_datum(impath="", label=0, domain=0, classname=""):
    """A ``Datum`` of the seam's class, built without a per-image check.

    Dassl's constructor asserts that the file exists: a bare ``AssertionError`` naming nothing, and one stat per
    image (1.3M for ImageNet). The readers check whole splits at once instead (``splits.verify_images_exist``),
    with a message naming the file. The fields are the ones Dassl's class stores, which its pickles hold too.
    """
    if not isinstance(impath, str):
        raise TypeError(f"Datum.impath must be a str, got {type(impath).__name__}")
    datum = Datum.__new__(Datum)
    datum.__dict__.update(_impath=impath, _label=label, _domain=domain, _classname=classname)
    return datum

__all__ = [
    "DATASET_REGISTRY", "DataManager", "DatasetBase", "DatasetWrapper", "Datum", "HAVE_DASSL", "RUNTIME_NAME",
    "TRANSFORM_NAMES",
    "build_dataset", "build_transform", "check_transform_names", "make_datum", "read_image", "runtime_location",
]

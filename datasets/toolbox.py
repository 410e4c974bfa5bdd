"""The data half of the toolbox seam: Dassl's data API when Dassl is importable, the built-in one otherwise.

Readers and trainers import these names from here, never from ``dassl`` or ``datasets.runtime`` directly.
Set ``DPC_RUNTIME=builtin`` to use the built-in runtime even where Dassl is installed.
"""
import importlib.util
import os

HAVE_DASSL = os.environ.get("DPC_RUNTIME", "").lower() != "builtin" and importlib.util.find_spec("dassl") is not None

if HAVE_DASSL:
    from dassl.data import DataManager
    from dassl.data.data_manager import DatasetWrapper, build_data_loader
    from dassl.data.datasets import DATASET_REGISTRY, DatasetBase, Datum, build_dataset
    from dassl.data.transforms import build_transform
    from dassl.utils import read_image
else:
    from .runtime import (
        DATASET_REGISTRY, DataManager, DatasetBase, DatasetWrapper, Datum, build_data_loader, build_dataset,
        build_transform, read_image,
    )

RUNTIME_NAME = "Dassl" if HAVE_DASSL else "built-in"

__all__ = [
    "DATASET_REGISTRY", "DataManager", "DatasetBase", "DatasetWrapper", "Datum", "HAVE_DASSL", "RUNTIME_NAME",
    "build_data_loader", "build_dataset", "build_transform", "read_image",
]

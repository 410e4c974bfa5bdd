"""The built-in data half of the toolbox seam: a small re-implementation of the Dassl data API."""
from datasets.runtime.data_manager import (
    DATASET_REGISTRY,
    DataManager,
    DatasetWrapper,
    build_data_loader,
    build_dataset,
    read_image,
)
from datasets.runtime.dataset_base import DatasetBase, Datum
from datasets.runtime.registry import Registry, check_availability
from datasets.runtime.transforms import build_transform

"""The built-in data half of the toolbox seam: a small re-implementation of the Dassl data API."""
from .data_manager import DATASET_REGISTRY, DataManager, DatasetWrapper, build_data_loader, build_dataset, read_image
from .dataset_base import DatasetBase, Datum
from .registry import Registry, check_availability
from .transforms import build_transform

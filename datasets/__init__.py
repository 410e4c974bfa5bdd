"""Datasets: the data half of the toolbox seam (see ``toolbox``) and the registered dataset readers.

Importing this package registers every reader, as the anchors' ``train.py`` does by importing each module.
"""
from . import caltech101, image_folder  # noqa: F401  (registration)
from .toolbox import DATASET_REGISTRY, HAVE_DASSL

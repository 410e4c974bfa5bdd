"""Datasets: the data half of the toolbox seam (see ``toolbox``) and the registered dataset readers.

Importing this package registers every reader, as the anchors' ``train.py`` does by importing each module.
"""
from datasets import (  # registration
    caltech101,
    dtd,
    eurosat,
    fgvc_aircraft,
    food101,
    image_folder,
    imagenet,
    imagenet_a,
    imagenet_r,
    imagenet_sketch,
    imagenetv2,
    oxford_flowers,
    oxford_pets,
    stanford_cars,
    sun397,
    ucf101,
)
from datasets.toolbox import DATASET_REGISTRY, HAVE_DASSL

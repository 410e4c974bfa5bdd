"""ImageNetSketch (docs/DATASETS.md: ImageNet-Sketch, one folder per wnid)."""
from datasets.imagenet_common import SortedFolderTestSet
from datasets.toolbox import DATASET_REGISTRY


@DATASET_REGISTRY.register()
class ImageNetSketch(SortedFolderTestSet):
    dataset_dir = "imagenet-sketch"
    image_dir = "images"
    docs_section = "imagenetsketch"

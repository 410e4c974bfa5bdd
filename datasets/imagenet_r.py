"""ImageNetR (docs/DATASETS.md: ImageNet-R, 200 wnid folders; labels 0..199 follow their sorted order)."""
from datasets.imagenet_common import SortedFolderTestSet
from datasets.toolbox import DATASET_REGISTRY


@DATASET_REGISTRY.register()
class ImageNetR(SortedFolderTestSet):
    dataset_dir = "imagenet-rendition"
    image_dir = "imagenet-r"
    docs_section = "imagenetr"

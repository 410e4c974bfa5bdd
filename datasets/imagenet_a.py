"""ImageNetA (docs/DATASETS.md: ImageNet-A, 200 wnid folders; labels 0..199 follow their sorted order)."""
from datasets.imagenet_common import SortedFolderTestSet
from datasets.toolbox import DATASET_REGISTRY


@DATASET_REGISTRY.register()
class ImageNetA(SortedFolderTestSet):
    dataset_dir = "imagenet-adversarial"
    image_dir = "imagenet-a"
    docs_section = "imageneta"

"""ImageNetV2 matched-frequency (docs/DATASETS.md): folders ``0``..``999`` named by the ImageNet label."""
from datasets.imagenet_common import TestOnlyDataset
from datasets.toolbox import DATASET_REGISTRY

NUM_CLASSES = 1000


@DATASET_REGISTRY.register()
class ImageNetV2(TestOnlyDataset):
    dataset_dir = "imagenetv2"
    image_dir = "imagenetv2-matched-frequency-format-val"
    docs_section = "imagenetv2"

    def read_data(self, classnames):
        # The class name of folder k is the k-th line of classnames.txt (ImageNet's sorted-wnid order).
        wnids = list(classnames.keys())
        if len(wnids) < NUM_CLASSES:
            raise ValueError(f"{self.classnames_file()} lists {len(wnids)} classes; ImageNetV2 needs all "
                             f"{NUM_CLASSES} ImageNet lines in sorted-wnid order (see {self.docs_ref()})")
        folders = [str(label) for label in range(NUM_CLASSES)]
        return self.scan(self.image_dir, folders, {str(k): classnames[wnids[k]] for k in range(NUM_CLASSES)})

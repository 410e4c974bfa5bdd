"""Caltech101 (docs/DATASETS.md): class folders, two ignored, four renamed."""
from datasets.benchmark import SplitDataset
from datasets.splits import read_and_split_data
from datasets.toolbox import DATASET_REGISTRY

IGNORED = ["BACKGROUND_Google", "Faces_easy"]
NEW_CNAMES = {"airplanes": "airplane", "Faces": "face", "Leopards": "leopard", "Motorbikes": "motorbike"}


@DATASET_REGISTRY.register()
class Caltech101(SplitDataset):
    dataset_dir = "caltech-101"
    image_dir = "101_ObjectCategories"
    split_name = "Caltech101"
    docs_section = "caltech101"

    def read_raw(self):
        self.require_dir(self.image_dir)
        return read_and_split_data(self.image_dir, ignored=IGNORED, new_cnames=NEW_CNAMES)

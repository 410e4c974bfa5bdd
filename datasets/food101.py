"""Food101 (docs/DATASETS.md): class folders under ``images/``; the official ``meta/`` split is not used."""
from datasets.benchmark import SplitDataset
from datasets.splits import read_and_split_data
from datasets.toolbox import DATASET_REGISTRY


@DATASET_REGISTRY.register()
class Food101(SplitDataset):
    dataset_dir = "food-101"
    image_dir = "images"
    split_name = "Food101"
    docs_section = "food101"

    def read_raw(self):
        self.require_dir(self.image_dir)
        return read_and_split_data(self.image_dir)

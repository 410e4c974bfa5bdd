"""DescribableTextures (docs/DATASETS.md): class folders under ``images/``; ``labels/`` and ``imdb/`` unused."""
from datasets.benchmark import SplitDataset
from datasets.splits import read_and_split_data
from datasets.toolbox import DATASET_REGISTRY


@DATASET_REGISTRY.register()
class DescribableTextures(SplitDataset):
    dataset_dir = "dtd"
    image_dir = "images"
    split_name = "DescribableTextures"
    docs_section = "describabletextures"

    # Reference readers call ``DTD.read_and_split_data``; keep it reachable for ported code.
    read_and_split_data = staticmethod(read_and_split_data)

    def read_raw(self):
        self.require_dir(self.image_dir)
        return read_and_split_data(self.image_dir)

"""EuroSAT (docs/DATASETS.md): the RGB release's class folders under ``2750/``, renamed to readable phrases."""
from datasets.benchmark import SplitDataset
from datasets.splits import read_and_split_data
from datasets.toolbox import DATASET_REGISTRY

NEW_CNAMES = {
    "AnnualCrop": "Annual Crop Land",
    "Forest": "Forest",
    "HerbaceousVegetation": "Herbaceous Vegetation Land",
    "Highway": "Highway or Road",
    "Industrial": "Industrial Buildings",
    "Pasture": "Pasture Land",
    "PermanentCrop": "Permanent Crop Land",
    "Residential": "Residential Buildings",
    "River": "River",
    "SeaLake": "Sea or Lake",
}


@DATASET_REGISTRY.register()
class EuroSAT(SplitDataset):
    dataset_dir = "eurosat"
    image_dir = "2750"
    split_name = "EuroSAT"
    docs_section = "eurosat"

    def read_raw(self):
        self.require_dir(self.image_dir)
        return read_and_split_data(self.image_dir, new_cnames=NEW_CNAMES)

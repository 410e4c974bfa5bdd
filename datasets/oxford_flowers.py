"""OxfordFlowers / Flowers102 (docs/DATASETS.md): labels from ``imagelabels.mat``, names from ``cat_to_name.json``."""
import json
import os
from collections import OrderedDict

from datasets.benchmark import SplitDataset
from datasets.splits import split_by_ratio
from datasets.stanford_cars import load_mat_variable
from datasets.toolbox import DATASET_REGISTRY


@DATASET_REGISTRY.register()
class OxfordFlowers(SplitDataset):
    dataset_dir = "oxford_flowers"
    image_dir = "jpg"
    split_name = "OxfordFlowers"
    docs_section = "oxfordflowers"

    def read_raw(self):
        from scipy.io import loadmat  # only needed when the split file is generated

        label_file = self.raw_file("imagelabels.mat")
        names_file = self.raw_file("cat_to_name.json")
        with open(names_file) as f:
            cat_to_name = json.load(f)
        # Entry i labels image_{i+1:05d}.jpg; classes are split in order of first appearance (not setid.mat).
        per_label = OrderedDict()
        for i, label in enumerate(load_mat_variable(loadmat, label_file, "labels")[0]):
            per_label.setdefault(int(label), []).append(os.path.join(self.image_dir, f"image_{i + 1:05d}.jpg"))
        per_class = [(self.lookup(cat_to_name, str(label), "class id", names_file), label - 1, impaths)
                     for label, impaths in per_label.items()]
        return split_by_ratio(per_class)

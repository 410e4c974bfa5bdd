"""StanfordCars (docs/DATASETS.md): 196 models; labels and names from the devkit's MATLAB files."""
import os

from datasets.benchmark import SplitDataset
from datasets.splits import split_trainval
from datasets.toolbox import DATASET_REGISTRY, make_datum


@DATASET_REGISTRY.register()
class StanfordCars(SplitDataset):
    dataset_dir = "stanford_cars"
    image_dir = ""  # split paths are relative to the dataset folder: cars_train/..., cars_test/...
    split_name = "StanfordCars"
    docs_section = "stanfordcars"

    def read_raw(self):
        meta = self.raw_file("devkit", "cars_meta.mat")
        trainval = self.read_annotations("cars_train", self.raw_file("devkit", "cars_train_annos.mat"), meta)
        test = self.read_annotations("cars_test", self.raw_file("cars_test_annos_withlabels.mat"), meta)
        train, val = split_trainval(trainval)
        return train, val, test

    def read_annotations(self, image_folder, anno_file, meta_file):
        from scipy.io import loadmat  # only needed when the split file is generated

        annotations = load_mat_variable(loadmat, anno_file, "annotations")[0]
        class_names = load_mat_variable(loadmat, meta_file, "class_names")[0]
        items = []
        for entry in annotations:
            label = int(entry["class"][0, 0]) - 1
            # 'AM General Hummer SUV 2000' -> '2000 AM General Hummer SUV': the year moves to the front.
            words = str(class_names[label][0]).split(" ")
            classname = " ".join([words[-1]] + words[:-1])
            impath = os.path.join(self.dataset_dir, image_folder, str(entry["fname"][0]))
            items.append(make_datum(impath=impath, label=label, classname=classname))
        return items


def load_mat_variable(loadmat, path, name):
    contents = loadmat(path)
    if name not in contents:
        raise ValueError(f"{path} has no variable {name!r} (found {sorted(k for k in contents if k[0] != '_')})")
    return contents[name]

"""SUN397 (docs/DATASETS.md): scene categories from ``ClassName.txt``; partition 01 gives train+val and test."""
import os

from datasets.benchmark import SplitDataset
from datasets.splits import split_trainval
from datasets.toolbox import DATASET_REGISTRY, make_datum


@DATASET_REGISTRY.register()
class SUN397(SplitDataset):
    dataset_dir = "sun397"
    image_dir = "SUN397"
    split_name = "SUN397"
    docs_section = "sun397"

    def read_raw(self):
        classes_file = self.raw_file("ClassName.txt")
        # '/a/abbey' -> 'a/abbey'; label = line index, blank lines included as in the reference
        keys = [line[1:] for _, line in self.read_lines(classes_file, keep_blank=True)]
        cname2lab = {key: label for label, key in enumerate(keys)}
        trainval = self.read_partition("Training_01.txt", cname2lab, classes_file)
        test = self.read_partition("Testing_01.txt", cname2lab, classes_file)
        train, val = split_trainval(trainval)
        return train, val, test

    def read_partition(self, name, cname2lab, classes_file):
        path = self.raw_file(name)
        items = []
        for number, line in self.read_lines(path):
            relpath = line[1:]  # '/a/abbey/sun_x.jpg' -> 'a/abbey/sun_x.jpg'
            key = os.path.dirname(relpath)
            label = self.lookup(cname2lab, key, f"category (line {number} of {name})", classes_file)
            # 'a/apartment_building/outdoor' -> 'outdoor apartment_building': drop the letter, reverse the rest
            classname = " ".join(key.split("/")[1:][::-1])
            items.append(make_datum(impath=os.path.join(self.image_dir, relpath), label=label, classname=classname))
        return items

"""OxfordPets (docs/DATASETS.md): 37 breeds; labels and names from ``annotations/{trainval,test}.txt``."""
import os

from datasets.benchmark import SplitDataset
from datasets.fewshot import subsample_classes
from datasets.splits import read_split, save_split, split_trainval
from datasets.toolbox import DATASET_REGISTRY, make_datum


@DATASET_REGISTRY.register()
class OxfordPets(SplitDataset):
    dataset_dir = "oxford_pets"
    image_dir = "images"
    split_name = "OxfordPets"
    docs_section = "oxfordpets"

    # The reference hangs its split helpers on this class and other readers call them through it
    # (``OxfordPets.read_split`` ...); keep those names working for code ported from the CoOp family.
    read_split = staticmethod(read_split)
    save_split = staticmethod(save_split)
    split_trainval = staticmethod(split_trainval)
    subsample_classes = staticmethod(subsample_classes)

    def read_raw(self):
        trainval = self.read_annotations("trainval.txt")
        test = self.read_annotations("test.txt")
        train, val = split_trainval(trainval)
        return train, val, test

    def read_annotations(self, name):
        """Lines ``<stem> <class id> <species> <breed id>``; label = class id - 1, name = lower-cased breed."""
        path = self.raw_file("annotations", name)
        items = []
        for number, line in self.read_lines(path):
            fields = line.split(" ")
            if len(fields) != 4 or not fields[1].isdigit():
                raise self.line_error(path, number, line, "'<image stem> <class id> <species> <breed id>'")
            stem, class_id = fields[0], int(fields[1])
            breed = "_".join(stem.split("_")[:-1]).lower()
            items.append(make_datum(impath=os.path.join(self.image_dir, stem + ".jpg"), label=class_id - 1,
                               classname=breed))
        return items

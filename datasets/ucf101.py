"""UCF101 (docs/DATASETS.md): the middle frame of each video; split 01 of ``ucfTrainTestlist/``."""
import os
import re

from datasets.benchmark import SplitDataset
from datasets.splits import split_trainval
from datasets.toolbox import DATASET_REGISTRY, make_datum

LISTS = "ucfTrainTestlist"


def split_camel_case(action):
    """'ApplyEyeMakeup' -> 'Apply_Eye_Makeup': the frame folders and class names use this spelling."""
    return "_".join(re.findall("[A-Z][^A-Z]*", action))


@DATASET_REGISTRY.register()
class UCF101(SplitDataset):
    dataset_dir = "ucf101"
    image_dir = "UCF-101-midframes"
    split_name = "UCF101"
    docs_section = "ucf101"

    def read_raw(self):
        classes_file = self.raw_file(LISTS, "classInd.txt")
        cname2lab = {}
        for number, line in self.read_lines(classes_file):
            fields = line.split(" ")
            if len(fields) != 2 or not fields[0].isdigit():
                raise self.line_error(classes_file, number, line, "'<class id> <Action>'")
            cname2lab[fields[1]] = int(fields[0]) - 1
        trainval = self.read_list("trainlist01.txt", cname2lab, classes_file)
        test = self.read_list("testlist01.txt", cname2lab, classes_file)
        train, val = split_trainval(trainval)
        return train, val, test

    def read_list(self, name, cname2lab, classes_file):
        """Lines ``<Action>/<video>.avi [<class id>]``; the label comes from the action, not the id."""
        path = self.raw_file(LISTS, name)
        items = []
        for number, line in self.read_lines(path):
            video = line.split(" ")[0]
            if video.count("/") != 1:
                raise self.line_error(path, number, line, "'<Action>/<video>.avi'")
            action, filename = video.split("/")
            label = self.lookup(cname2lab, action, f"action (line {number} of {name})", classes_file)
            renamed = split_camel_case(action)
            impath = os.path.join(self.image_dir, renamed, filename.replace(".avi", ".jpg"))
            items.append(make_datum(impath=impath, label=label, classname=renamed))
        return items

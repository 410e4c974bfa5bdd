"""What the ImageNet readers share: ``classnames.txt``, one-folder-per-class scans, the test-only base class."""
import os
from collections import OrderedDict

from datasets.benchmark import ReaderFiles, dataset_folder
from datasets.splits import list_visible
from datasets.toolbox import DatasetBase, make_datum


def read_classnames(path):
    """``<wnid> <class name>`` lines -> ordered ``{wnid: name}`` (names may contain spaces)."""
    classnames = OrderedDict()
    with open(path) as f:
        for line in f:
            fields = line.strip().split(" ")
            classnames[fields[0]] = " ".join(fields[1:])
    return classnames


def sorted_class_folders(directory, ignored=()):
    """Sorted sub-folder names; label = index in this list. Loose files (README.txt ...) are not classes."""
    return sorted(entry.name for entry in os.scandir(directory)
                  if entry.is_dir() and not entry.name.startswith(".") and entry.name not in ignored)


class ImageNetFamily(ReaderFiles):
    """Helpers for readers laid out as ``<dataset_dir>/classnames.txt`` plus one folder per class."""

    def classnames_file(self):
        return self.require_file(os.path.join(self.dataset_dir, "classnames.txt"))

    def scan(self, directory, folders, classnames):
        """Datums for every visible file of each class folder (label = its index in ``folders``), in
        ``os.listdir`` order as the reference."""
        source = os.path.join(self.dataset_dir, "classnames.txt")
        items = []
        for label, folder in enumerate(folders):
            classname = self.lookup(classnames, folder, "class folder", source)
            class_dir = self.require_dir(os.path.join(directory, folder))
            items.extend(make_datum(impath=os.path.join(class_dir, name), label=label, classname=classname)
                         for name in list_visible(class_dir))
        return items


class TestOnlyDataset(ImageNetFamily, DatasetBase):
    """ImageNetV2/-Sketch/-A/-R: the images are both ``train_x`` and ``test``; there is no val.

    No few-shot sampling, no base/new subsampling and nothing written to disk: these sets only evaluate
    models trained on ImageNet.
    """

    dataset_dir = ""
    image_dir = ""

    def __init__(self, cfg):
        self.dataset_dir = dataset_folder(cfg, type(self).dataset_dir)
        self.image_dir = os.path.join(self.dataset_dir, type(self).image_dir)
        self.require_dir(self.dataset_dir)
        self.require_dir(self.image_dir)
        ignored = [f"DATASET.NUM_SHOTS={cfg.DATASET.NUM_SHOTS}"] if cfg.DATASET.NUM_SHOTS >= 1 else []
        if cfg.DATASET.SUBSAMPLE_CLASSES != "all":
            ignored.append(f"DATASET.SUBSAMPLE_CLASSES={cfg.DATASET.SUBSAMPLE_CLASSES}")
        if ignored:
            print(f"Note: {type(self).__name__} is a test-only dataset; ignoring {', '.join(ignored)}")
        data = self.read_data(read_classnames(self.classnames_file()))
        if not data:
            raise FileNotFoundError(f"{type(self).__name__}: no images under {self.image_dir} "
                                    f"(see {self.docs_ref()})")
        super().__init__(train_x=data, test=data)

    def read_data(self, classnames):
        raise NotImplementedError


class SortedFolderTestSet(TestOnlyDataset):
    """Sketch, A and R: label = position of the wnid among the sorted class folders."""

    def read_data(self, classnames):
        return self.scan(self.image_dir, sorted_class_folders(self.image_dir), classnames)

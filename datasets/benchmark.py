"""The construction pipeline shared by every CoOp-style reader (DATASETS.md §1.8)."""
import os

from .fewshot import fewshot_splits, subsample_classes
from .splits import read_split, save_split, verify_images_exist
from .toolbox import DatasetBase

DOCS = "docs/DATASETS.md"


class SplitDataset(DatasetBase):
    """A reader whose train/val/test lists come from ``split_zhou_<split_name>.json`` or its raw files.

    Subclasses set ``dataset_dir`` (the folder under ``DATASET.ROOT``), ``image_dir`` (the folder under it that
    split paths are relative to) and ``split_name``, and implement ``read_raw`` for datasets whose split
    file can be generated.
    """

    dataset_dir = ""
    image_dir = ""
    split_name = None
    docs_section = ""

    def __init__(self, cfg):
        root = os.path.abspath(os.path.expanduser(cfg.DATASET.ROOT))
        self.dataset_dir = os.path.join(root, self.dataset_dir_name(cfg))
        self.image_dir = os.path.join(self.dataset_dir, type(self).image_dir)
        self.split_path = os.path.join(self.dataset_dir, self.split_file_name(cfg))
        self.require_dir(self.dataset_dir)
        os.makedirs(os.path.join(self.dataset_dir, "split_fewshot"), exist_ok=True)

        train, val, test = self.load_splits()
        verify_images_exist([*train, *val, *test], hint=f" (see {self.docs_ref()})")
        train, val = fewshot_splits(self.dataset_dir, cfg.DATASET.NUM_SHOTS, cfg.SEED, train, val)
        train, val, test = subsample_classes(train, val, test, subsample=cfg.DATASET.SUBSAMPLE_CLASSES)
        super().__init__(train_x=train, val=val, test=test)

    def dataset_dir_name(self, cfg):
        return type(self).dataset_dir

    def split_file_name(self, cfg):
        return f"split_zhou_{self.split_name}.json"

    def load_splits(self):
        if os.path.exists(self.split_path):
            return read_split(self.split_path, self.image_dir)
        train, val, test = self.read_raw()
        save_split(train, val, test, self.split_path, self.image_dir)
        return train, val, test

    def read_raw(self):
        raise FileNotFoundError(f"Split file not found: {self.split_path} (see {self.docs_ref()})")

    def docs_ref(self):
        return f"{DOCS}#{self.docs_section}" if self.docs_section else DOCS

    def require_dir(self, path):
        if not os.path.isdir(path):
            raise FileNotFoundError(
                f"{type(self).__name__}: expected the folder {path} (DATASET.ROOT / --root is "
                f"{os.path.dirname(self.dataset_dir)}); see {self.docs_ref()} for the layout"
            )

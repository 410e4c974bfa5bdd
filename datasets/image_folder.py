"""A user's own data: ``<root>/<DATASET.FOLDER>/<class>/<image>``, split 50/20/30 once into a JSON file."""
import os

from torchvision.datasets.folder import IMG_EXTENSIONS

from datasets.benchmark import SplitDataset
from datasets.splits import list_visible, split_by_ratio
from datasets.toolbox import DATASET_REGISTRY

NOT_CLASSES = {"split_fewshot"}


@DATASET_REGISTRY.register()
class ImageFolder(SplitDataset):
    """Labels follow the sorted class-folder names; the split is written to ``split_<folder>.json``. Only files
    with an image extension (torchvision's list) count: ``Thumbs.db``, notes and sub-folders are left out."""

    docs_section = "your-own-dataset"
    fixed_split = False  # the user's own data: its split is drawn once and written

    def dataset_dir_name(self, cfg):
        if not cfg.DATASET.FOLDER:
            raise ValueError("DATASET.NAME ImageFolder needs DATASET.FOLDER: the folder under DATASET.ROOT")
        return cfg.DATASET.FOLDER

    def split_file_name(self, cfg):
        return f"split_{cfg.DATASET.FOLDER}.json"

    def read_raw(self):
        classes = sorted(name for name in list_visible(self.dataset_dir)
                         if name not in NOT_CLASSES and os.path.isdir(os.path.join(self.dataset_dir, name)))
        if not classes:
            raise FileNotFoundError(f"{self.dataset_dir} has no class folders (see {self.docs_ref()})")
        per_class = []
        for label, name in enumerate(classes):
            folder = os.path.join(self.dataset_dir, name)
            images = [f for f in sorted(list_visible(folder))
                      if f.lower().endswith(IMG_EXTENSIONS) and os.path.isfile(os.path.join(folder, f))]
            per_class.append((name, label, [os.path.join(folder, f) for f in images]))
        return split_by_ratio(per_class)

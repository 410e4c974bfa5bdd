"""ImageNet (docs/DATASETS.md): ``images/train`` and ``images/val`` in wnid folders, val doubling as test.

The scan is cached in ``imagenet/preprocessed.pkl`` in Dassl's format, so the reference code and this one share
the file. The reference never checks that file; here it is rebuilt when it no longer matches the folders.
"""
import hashlib
import os

from datasets.benchmark import dataset_folder, verify_fewshot_images
from datasets.datum_pickle import UnreadableCacheError, load_datum_pickle, save_datum_pickle
from datasets.fewshot import fewshot_splits, subsample_classes
from datasets.imagenet_common import ImageNetFamily, read_classnames, sorted_class_folders
from datasets.splits import verify_images_exist
from datasets.toolbox import DATASET_REGISTRY, DatasetBase


@DATASET_REGISTRY.register()
class ImageNet(ImageNetFamily, DatasetBase):
    dataset_dir = "imagenet"
    docs_section = "imagenet"

    def __init__(self, cfg):
        self.dataset_dir = dataset_folder(cfg, type(self).dataset_dir)
        self.image_dir = os.path.join(self.dataset_dir, "images")
        self.preprocessed = os.path.join(self.dataset_dir, "preprocessed.pkl")
        self.require_dir(self.dataset_dir)
        os.makedirs(os.path.join(self.dataset_dir, "split_fewshot"), exist_ok=True)

        train, test = self.load_train_test()
        # Only train is few-shot sampled and cached ({"train": ...}); val stays the full val set.
        train, _ = fewshot_splits(self.dataset_dir, cfg.DATASET.NUM_SHOTS, cfg.SEED, train)
        verify_fewshot_images(self.dataset_dir, cfg, train)
        train, test = subsample_classes(train, test, subsample=cfg.DATASET.SUBSAMPLE_CLASSES)
        super().__init__(train_x=train, val=test, test=test)

    def load_train_test(self):
        if os.path.exists(self.preprocessed):
            try:
                data = load_datum_pickle(self.preprocessed, self.dataset_dir)
            except UnreadableCacheError as err:  # e.g. a scan cut short under an older release: as if missing
                print(f"{self.preprocessed} cannot be read ({err.reason}); scanning the image folders again")
                return self.scan_and_cache()
            reason = self.stale_reason(data)
            if reason is None:
                return data["train"], data["test"]
            print(f"{self.preprocessed} is out of date ({reason}); scanning the image folders again")
        return self.scan_and_cache()

    def split_dirs(self):
        return (self.require_dir(os.path.join(self.image_dir, "train")),
                self.require_dir(os.path.join(self.image_dir, "val")))

    def scan_and_cache(self):
        classnames = read_classnames(self.classnames_file())
        train_dir, val_dir = self.split_dirs()
        train_folders, val_folders = sorted_class_folders(train_dir), sorted_class_folders(val_dir)
        for split_dir, folders in ((train_dir, train_folders), (val_dir, val_folders)):
            if not folders:
                raise FileNotFoundError(
                    f"ImageNet: {split_dir} holds no class folders; it must contain one folder per wnid "
                    f"(a flat val folder has to be sorted into wnid folders first; see {self.docs_ref()})"
                )
        if train_folders != val_folders:
            # Labels are folder indices counted separately per split, so different sets would mislabel val.
            only_train = sorted(set(train_folders) - set(val_folders))[:5]
            only_val = sorted(set(val_folders) - set(train_folders))[:5]
            raise ValueError(f"ImageNet: images/train and images/val must hold the same wnid folders; "
                             f"only in train: {only_train}, only in val: {only_val} (see {self.docs_ref()})")
        train = self.scan(train_dir, train_folders, classnames)
        test = self.scan(val_dir, val_folders, classnames)
        save_datum_pickle(self.preprocessed, {"train": train, "test": test, "dataset_dir": self.dataset_dir,
                                              "tree_signature": self.tree_signature()})
        return train, test

    def tree_signature(self):
        """Each class folder's mtime (adding or removing an image changes it) and classnames.txt's hash."""
        signature = {}
        for split, split_dir in zip(("train", "val"), self.split_dirs()):
            signature[split] = sorted([entry.name, entry.stat().st_mtime_ns] for entry in os.scandir(split_dir)
                                      if entry.is_dir() and not entry.name.startswith("."))
        classnames = os.path.join(self.dataset_dir, "classnames.txt")
        if os.path.isfile(classnames):  # the cache alone is enough to run, as in the reference
            with open(classnames, "rb") as f:
                signature["classnames_sha1"] = hashlib.sha1(f.read()).hexdigest()
        return signature

    def stale_reason(self, data):
        """Why the cached scan cannot be used, or None. Files written by Dassl carry no signature; for them
        the cheap checks are the number of class folders and that every listed image exists."""
        if not isinstance(data.get("train"), list) or not isinstance(data.get("test"), list):
            return "it lacks the train/test lists"
        stored = data.get("tree_signature")
        if stored is not None:
            current = self.tree_signature()
            if "classnames_sha1" not in current:
                stored = {key: value for key, value in stored.items() if key != "classnames_sha1"}
            if stored != current:
                return "the image folders or classnames.txt changed since it was written"
        else:
            for items, split_dir in zip((data["train"], data["test"]), self.split_dirs()):
                n_labels = len({item.label for item in items})
                n_folders = len(sorted_class_folders(split_dir))
                if n_labels != n_folders:
                    return f"it lists {n_labels} classes for {split_dir}, which has {n_folders} class folders"
        try:
            verify_images_exist([*data["train"], *data["test"]])
        except FileNotFoundError as error:
            return str(error)
        return None

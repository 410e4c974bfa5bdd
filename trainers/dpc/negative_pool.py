"""Images for negative classes: one random image per requested class, with the training transform.

The class -> images index is built once. Images are read and augmented by long-lived worker processes
(``image_workers.py``; ``DATALOADER.NUM_WORKERS`` of them, at most one fewer than the CPU cores when training on the
CPU, where the main process computes on one core), in parallel with each other and with training; with 0 workers
they load in-process when collected. Each image is augmented under its own seed, drawn from the global torch RNG in
the trainer's process, so a run is reproducible whatever the number of workers and the order in which they finish.
"""
import os
from collections import defaultdict

import torch

from datasets.image_errors import read_image_naming_errors
from datasets.split_checks import check_library_entries
from datasets.splits import read_json_object, verify_images_exist
from datasets.toolbox import build_dataset, build_transform
from trainers.dpc.config import NEGATIVE_POOLS
from trainers.dpc.image_workers import ImageWorkers


class _SeededImages:
    """``load((path, seed))``: the image at ``path``, transformed under ``seed``."""

    def __init__(self, transform):
        self.transform = transform

    def __call__(self, key):
        path, seed = key
        with torch.random.fork_rng(devices=[]):  # leaves the caller's RNG untouched when run in-process
            # The CPU generator alone: the transforms draw from it, and torch.manual_seed would also seed every
            # accelerator (~110 us a call against ~7 us, measured), for the same stream.
            torch.default_generator.manual_seed(seed)
            return self.transform(read_image_naming_errors(path))


def negative_workers(num_workers, device):
    """Workers for the negative images: as configured on a GPU; on the CPU at most one fewer than the cores, since
    the main process computes on a core of its own and a worker that competes with it slows the step down."""
    if torch.device(device).type == "cpu":
        return max(0, min(num_workers, (os.cpu_count() or 1) - 1))
    return num_workers


class NegativePool:
    def __init__(self, items, transform, num_workers=0):
        self.paths = defaultdict(list)
        for item in items:
            self.paths[item.label].append(item.impath)
        self.load = _SeededImages(transform)
        self.num_workers = num_workers
        self.workers = ImageWorkers(self.load, num_workers) if num_workers > 0 else None

    @property
    def classes(self):
        return set(self.paths)

    def request(self, classes):
        """Start loading one uniformly drawn image of each class; ``.collect()`` on the result returns the
        (len(classes), 3, H, W) tensor. With workers, loading runs in the background until collected."""
        if not classes:
            return _PendingImages(None)
        keys = []
        for c in classes:
            options = self.paths[c]
            pick = int(torch.randint(len(options), ()))
            keys.append((options[pick], int(torch.randint(2 ** 62, ()))))
        if self.workers is None:
            return _PendingImages(lambda: torch.stack([self.load(key) for key in keys]))
        n_chunks = max(1, min(self.num_workers, len(keys)))
        size = -(-len(keys) // n_chunks)
        request = self.workers.submit([keys[i:i + size] for i in range(0, len(keys), size)])
        return _PendingImages(lambda: self.workers.gather(*request))

    def close(self):
        if self.workers is not None:
            self.workers.close()
            self.workers = None


class _PendingImages:
    def __init__(self, load):
        self.load = load  # started in the workers already, or loaded in-process now

    def collect(self):
        return self.load() if self.load is not None else None


REFERENCE_ENTRY = '{"train": [{"class name": [label, [image paths]]}]}'
EXPECTED = ('expected {"class name": [image paths]}, the reference code\'s ' + REFERENCE_ENTRY
            + ' or a split file {"train": [[path, label, class name]]}')


def read_image_library(path, classnames, image_dir=None):
    """Read an image-library json as items with ``impath`` and ``label`` (labels of ``classnames``).

    Accepted layouts (only the training images are read):
    - ``{class name: [image path, ...]}``;
    - the reference code's ``SPLE_<Dataset>.json``: ``{"train": [{class name: [label, [image path, ...]]}],
      "val": [...], "train_obj_list": [...], ...}`` (its labels are ignored: classes are matched by name, as there);
    - a split file ``{"train": [[path, label, class name], ...], ...}``.
    Relative paths are relative to ``image_dir``, the dataset's image folder (the folder its split-file paths are
    relative to, as the reference code resolves its library), or to the json's folder when there is none.
    Classes absent from ``classnames`` are ignored. Every listed image of the current classes must exist: a
    missing one is named here, before training.
    """
    library = read_json_object(path, "Image library", ": " + EXPECTED)
    folder = image_dir or os.path.dirname(os.path.abspath(path))
    train = library.get("train")
    if isinstance(train, list) and train and all(isinstance(part, dict) for part in train):
        pairs = _reference_pairs(path, train)
    elif isinstance(train, list):
        pairs = _split_file_pairs(path, train)
    else:
        pairs = _class_list_pairs(path, library)
    check_library_entries(f"Image library {path}", [("train", [(rel, label, cname) for cname, rel, label in pairs])],
                          image_dir)
    index = {name: label for label, name in enumerate(classnames)}
    items = [_Item(os.path.join(folder, rel), index[cname]) for cname, rel, _ in pairs if cname in index]
    if not items:
        raise ValueError(f"Image library {path} has no images of the current classes (e.g. {classnames[:3]})")
    verify_images_exist(items, hint=f" (listed in the image library {path}; relative paths are read under "
                                    f"{folder})")
    return items


def _is_path_list(value):
    return isinstance(value, list) and all(isinstance(rel, str) for rel in value)


def _reference_pairs(path, parts):
    pairs = []
    for part in parts:
        for cname, entry in part.items():
            if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], int)
                    and _is_path_list(entry[1])):
                raise ValueError(f'Image library {path}: "train" maps "{cname}" to {str(entry)[:80]}; expected '
                                 f"[label, [image paths]] as in {REFERENCE_ENTRY}")
            pairs.extend((cname, rel, None) for rel in entry[1])  # its labels are not read
    return pairs


def _split_file_pairs(path, entries):
    pairs = []
    for i, entry in enumerate(entries):
        if not (isinstance(entry, list) and len(entry) == 3 and isinstance(entry[0], str)):
            raise ValueError(f'Image library {path}: entry {i} of "train" is {str(entry)[:80]}; expected '
                             f"[image path, label, class name] (a split file) or {REFERENCE_ENTRY}")
        pairs.append((entry[2], entry[0], entry[1] if isinstance(entry[1], int) else None))
    return pairs


def _class_list_pairs(path, library):
    pairs = []
    for cname, rels in library.items():
        if not _is_path_list(rels):
            raise ValueError(f'Image library {path}: "{cname}" maps to {str(rels)[:80]}; expected a list of '
                             "image paths")
        pairs.extend((cname, rel, None) for rel in rels)
    return pairs


class _Item:
    def __init__(self, impath, label):
        self.impath = impath
        self.label = label


def image_folder(dataset):
    """The folder a dataset's split-file paths are relative to (its image folder), or None when it has none."""
    return getattr(dataset, "image_dir", None) or getattr(dataset, "dataset_dir", None)


def build_negative_pool(cfg, dataset, device) -> NegativePool:
    """The pool ``TRAINER.DPC.NEGATIVE_POOL`` names for a run on ``dataset``: its few-shot training images
    ("train"), all its training images ("full") or an image library (a json file), with the training transform."""
    source = cfg.TRAINER.DPC.NEGATIVE_POOL
    if source == "train":
        items = dataset.train_x
    elif source == "full":
        cfg = cfg.clone()
        cfg.defrost()
        cfg.DATASET.NUM_SHOTS = -1
        cfg.freeze()
        items = build_dataset(cfg).train_x
    elif os.path.isfile(source):
        items = read_image_library(source, dataset.classnames, image_folder(dataset))
    else:
        raise FileNotFoundError(f"TRAINER.DPC.NEGATIVE_POOL must be one of {NEGATIVE_POOLS} or an existing "
                                f"image-library json; got {source!r}")
    print(f"Negative pool: {len(items):,} images ({source})")
    transform = build_transform(cfg, is_train=True)
    workers = negative_workers(cfg.DATALOADER.NUM_WORKERS, device)
    if workers != cfg.DATALOADER.NUM_WORKERS:
        print(f"Negative images: {workers} worker(s) (DATALOADER.NUM_WORKERS {cfg.DATALOADER.NUM_WORKERS}; "
              f"training on the CPU, which has {os.cpu_count()} cores)")
    return NegativePool(items, transform, num_workers=workers)

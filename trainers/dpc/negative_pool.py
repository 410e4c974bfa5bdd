"""Images for negative classes: one random image per requested class, with the training transform.

The class -> images index is built once. Images are read and augmented by persistent DataLoader workers
(``DATALOADER.NUM_WORKERS``), in parallel with each other. Each image is augmented under its own seed,
drawn from the global torch RNG in the trainer's process, so a run is reproducible whatever the number
of workers and the order in which they finish.
"""
import os
from collections import defaultdict

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from datasets.image_errors import read_image_naming_errors
from datasets.splits import read_json_object, verify_images_exist


class _SeededImages(Dataset):
    """``dataset[(path, seed)]``: the image at ``path``, transformed under ``seed``."""

    def __init__(self, transform):
        self.transform = transform

    def __getitem__(self, key):
        path, seed = key
        with torch.random.fork_rng(devices=[]):  # leaves the caller's RNG untouched when run in-process
            # The CPU generator alone: the transforms draw from it, and torch.manual_seed would also seed every
            # accelerator (~110 us a call against ~7 us, measured), for the same stream.
            torch.default_generator.manual_seed(seed)
            return self.transform(read_image_naming_errors(path))


class _Requests(Sampler):
    """The current request, split into one chunk per worker; rewritten before each load."""

    def __init__(self):
        self.chunks = []

    def __iter__(self):
        return iter(self.chunks)

    def __len__(self):
        return len(self.chunks)


class NegativePool:
    def __init__(self, items, transform, num_workers=0):
        self.paths = defaultdict(list)
        for item in items:
            self.paths[item.label].append(item.impath)
        self.num_workers = num_workers
        self.requests = _Requests()
        # Its own generator: the workers' base seed is then never drawn from the global RNG, whose stream
        # (checkpointed at epoch ends) must not depend on when the persistent workers happened to start.
        self.loader = DataLoader(_SeededImages(transform), batch_sampler=self.requests, num_workers=num_workers,
                                 persistent_workers=num_workers > 0, pin_memory=torch.cuda.is_available(),
                                 generator=torch.Generator())

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
        n_chunks = max(1, min(self.num_workers, len(keys)))
        size = -(-len(keys) // n_chunks)
        self.requests.chunks = [keys[i:i + size] for i in range(0, len(keys), size)]
        return _PendingImages(iter(self.loader))

    def close(self):
        self.loader = None  # ends the persistent workers


class _PendingImages:
    def __init__(self, iterator):
        self.iterator = iterator  # a started DataLoader iteration: workers are already loading

    def collect(self):
        return torch.cat(list(self.iterator)) if self.iterator is not None else None


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
    index = {name: label for label, name in enumerate(classnames)}
    items = [_Item(os.path.join(folder, rel), index[cname]) for cname, rel in pairs if cname in index]
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
            pairs.extend((cname, rel) for rel in entry[1])
    return pairs


def _split_file_pairs(path, entries):
    pairs = []
    for i, entry in enumerate(entries):
        if not (isinstance(entry, list) and len(entry) == 3 and isinstance(entry[0], str)):
            raise ValueError(f'Image library {path}: entry {i} of "train" is {str(entry)[:80]}; expected '
                             f"[image path, label, class name] (a split file) or {REFERENCE_ENTRY}")
        pairs.append((entry[2], entry[0]))
    return pairs


def _class_list_pairs(path, library):
    pairs = []
    for cname, rels in library.items():
        if not _is_path_list(rels):
            raise ValueError(f'Image library {path}: "{cname}" maps to {str(rels)[:80]}; expected a list of '
                             "image paths")
        pairs.extend((cname, rel) for rel in rels)
    return pairs


class _Item:
    def __init__(self, impath, label):
        self.impath = impath
        self.label = label


def image_folder(dataset):
    """The folder a dataset's split-file paths are relative to (its image folder), or None when it has none."""
    return getattr(dataset, "image_dir", None) or getattr(dataset, "dataset_dir", None)

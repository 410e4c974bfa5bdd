"""Images for negative classes: one random image per requested class, with the training transform.

The class -> images index is built once. Decoding runs in worker threads; the random augmentation runs in
the calling thread, in request order, so that runs stay reproducible under a fixed seed.
"""
import json
import os
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

import torch

from datasets.toolbox import read_image


def _decode(path):
    image = read_image(path)
    image.load()
    return image


class NegativePool:
    def __init__(self, items, transform, num_workers=0):
        self.paths = defaultdict(list)
        for item in items:
            self.paths[item.label].append(item.impath)
        self.transform = transform
        self.executor = ThreadPoolExecutor(num_workers) if num_workers > 0 else None

    @property
    def classes(self):
        return set(self.paths)

    def sample(self, classes):
        """A (len(classes), 3, H, W) tensor: one uniformly drawn image of each class."""
        picks = []
        for c in classes:
            options = self.paths[c]
            picks.append(options[int(torch.randint(len(options), ()))])
        decoded = self.executor.map(_decode, picks) if self.executor else map(_decode, picks)
        return torch.stack([self.transform(image) for image in decoded])

    def close(self):
        if self.executor is not None:
            self.executor.shutdown(wait=False)


def read_image_library(path, classnames):
    """Read an image-library json as items with ``impath`` and ``label`` (labels of ``classnames``).

    Accepted layouts: ``{class name: [image path, ...]}`` (the released code's library) or a split file
    ``{"train": [[path, label, class name], ...], ...}`` whose class names are matched. Relative paths are
    relative to the json's folder. Classes absent from ``classnames`` are ignored.
    """
    with open(path) as f:
        library = json.load(f)
    folder = os.path.dirname(os.path.abspath(path))
    if "train" in library and isinstance(library["train"], list):
        pairs = [(cname, rel) for rel, _, cname in library["train"]]
    else:
        pairs = [(cname, rel) for cname, rels in library.items() for rel in rels]
    index = {name: label for label, name in enumerate(classnames)}
    items = [_Item(os.path.join(folder, rel), index[cname]) for cname, rel in pairs if cname in index]
    if not items:
        raise ValueError(f"Image library {path} has no images of the current classes (e.g. {classnames[:3]})")
    return items


class _Item:
    def __init__(self, impath, label):
        self.impath = impath
        self.label = label

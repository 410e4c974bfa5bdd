"""Split JSON files (``split_zhou_<Name>.json``) and the reference split-generation rules (docs/DATASETS.md)."""
import json
import os
import random
from collections import OrderedDict

from datasets.atomic_write import replace_atomically
from datasets.split_checks import check_split_entries
from datasets.toolbox import make_datum


def read_json_object(path, what, remedy=""):
    """The JSON object in ``path``; an invalid file or another kind of value is an error naming the file."""
    with open(path) as f:
        try:
            data = json.load(f)
        except ValueError as err:
            raise ValueError(f"{what} {path} is not valid JSON ({err}){remedy}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{what} {path} holds a {type(data).__name__}, not an object{remedy}")
    return data


def read_split(filepath, path_prefix, remedy="; delete it to have it written again"):
    """Read train/val/test Datum lists; relative paths are joined to ``path_prefix``, class names kept verbatim.
    ``remedy`` ends the message of an unreadable file."""
    print(f"Reading split from {filepath}")
    split = read_json_object(filepath, "Split file", remedy)
    missing = [key for key in ("train", "val", "test") if not isinstance(split.get(key), list)]
    if missing:
        raise ValueError(f"{filepath}: the split file lacks the lists {missing} (expected train, val and test)")

    def to_datums(key):
        datums = []
        for i, entry in enumerate(split[key]):
            if not (isinstance(entry, list) and len(entry) == 3 and isinstance(entry[0], str)
                    and isinstance(entry[1], int) and isinstance(entry[2], str)):
                raise ValueError(f'{filepath}: entry {i} of "{key}" is {entry!r}; expected '
                                 "[relative image path, integer label, class name]")
            rel, label, cname = entry
            datums.append(make_datum(impath=os.path.join(path_prefix, rel), label=label, classname=cname))
        return datums

    datums = to_datums("train"), to_datums("val"), to_datums("test")
    check_split_entries(filepath, [(key, split[key]) for key in ("train", "val", "test")], path_prefix)
    return datums


def relative_path(impath, path_prefix):
    """The path as stored in split files: the prefix removed (every occurrence, as the reference does)."""
    rel = impath.replace(path_prefix, "")
    return rel[1:] if rel.startswith("/") else rel


def save_split(train, val, test, filepath, path_prefix):
    def to_entries(items):
        return [(relative_path(item.impath, path_prefix), item.label, item.classname) for item in items]

    split = OrderedDict(train=to_entries(train), val=to_entries(val), test=to_entries(test))
    os.makedirs(os.path.dirname(os.path.abspath(filepath)), exist_ok=True)

    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(split, f, indent=4, separators=(",", ": "))
    replace_atomically(filepath, write)
    print(f"Saved split to {filepath}")


def group_indices_by_label(items):
    """Label -> item indices, labels in order of first appearance (the reference's grouping)."""
    groups = OrderedDict()
    for idx, item in enumerate(items):
        groups.setdefault(item.label, []).append(idx)
    return groups


def split_trainval(trainval, p_val=0.2):
    """Per class: shuffle, the first round(n * p_val) go to val (needs >= 3 items per class)."""
    print(f"Splitting trainval into {1 - p_val:.0%} train and {p_val:.0%} val")
    train, val = [], []
    for label, idxs in group_indices_by_label(trainval).items():
        n_val = round(len(idxs) * p_val)
        if n_val == 0:
            raise ValueError(
                f'Class "{trainval[idxs[0]].classname}" (label {label}) has {len(idxs)} trainval images; '
                "splitting 80/20 needs at least 3"
            )
        random.shuffle(idxs)
        val.extend(trainval[i] for i in idxs[:n_val])
        train.extend(trainval[i] for i in idxs[n_val:])
    return train, val


def list_visible(directory):
    return [name for name in os.listdir(directory) if not name.startswith(".")]


def split_by_ratio(images_per_class, p_trn=0.5, p_val=0.2):
    """Split ``[(class_name, label, [impath, ...]), ...]`` 50/20/30 per class after a shuffle."""
    print(f"Splitting into {p_trn:.0%} train, {p_val:.0%} val, and {1 - p_trn - p_val:.0%} test")
    train, val, test = [], [], []
    for classname, label, impaths in images_per_class:
        random.shuffle(impaths)
        n_total = len(impaths)
        n_train = round(n_total * p_trn)
        n_val = round(n_total * p_val)
        if min(n_train, n_val, n_total - n_train - n_val) <= 0:
            raise ValueError(
                f'Class "{classname}" has {n_total} images; a 50/20/30 split needs at least 4 per class'
            )
        datums = [make_datum(impath=path, label=label, classname=classname) for path in impaths]
        train.extend(datums[:n_train])
        val.extend(datums[n_train:n_train + n_val])
        test.extend(datums[n_train + n_val:])
    return train, val, test


def read_and_split_data(image_dir, p_trn=0.5, p_val=0.2, ignored=(), new_cnames=None):
    """Class folders sorted case-sensitively give the labels; each folder's files split 50/20/30."""
    categories = sorted(name for name in list_visible(image_dir) if name not in ignored)
    new_cnames = new_cnames or {}
    per_class = []
    for label, category in enumerate(categories):
        folder = os.path.join(image_dir, category)
        impaths = [os.path.join(folder, name) for name in list_visible(folder)]
        per_class.append((new_cnames.get(category, category), label, impaths))
    return split_by_ratio(per_class, p_trn, p_val)


def verify_images_exist(items, hint=""):
    """Raise FileNotFoundError naming the first listed image that is not on disk.

    One directory listing per folder instead of one stat per image: Food101 and ImageNet list 100k+ images
    in a few hundred folders.
    """
    listings = {}
    for item in items:
        folder, name = os.path.split(item.impath)
        if folder not in listings:
            listings[folder] = set(os.listdir(folder)) if os.path.isdir(folder) else set()
        if name not in listings[folder]:
            why = ""
            if not os.path.isdir(folder):  # a whole class missing, as when a folder was renamed or not extracted
                cname = getattr(item, "classname", "")
                why = f" (the folder {folder}{f' of class {cname!r}' if cname else ''} does not exist)"
            raise FileNotFoundError(f"Image listed in the split is missing on disk: {item.impath}{why}{hint}")

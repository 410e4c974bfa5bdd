"""Split entries checked against the dataset before anything trains: a split file (or an image library, or a
few-shot cache) whose entries do not fit would train, test at a wrong accuracy and be recorded as finished.

- a label is within the class range: 0 .. K-1, K the number of classes of ``train``;
- one class name per label and one label per class name, across train, val and test;
- an image path stays inside the dataset's image folder (relative, no ``..`` out of it).

Each failure is one line naming the file, the list and the entry.
"""
import os


class SplitEntryError(ValueError):
    """An entry of a split file, image library or few-shot cache that does not fit the dataset."""


def _entry_error(source, key, index, entry, problem, remedy=""):
    return SplitEntryError(f'{source}: entry {index} of "{key}" ({str(list(entry))[:160]}): {problem}{remedy}')


def leaves_folder(rel):
    """Whether a relative image path of a split points outside the folder it is relative to."""
    if os.path.isabs(rel):
        return True
    normal = os.path.normpath(rel)
    return normal == os.pardir or normal.startswith(os.pardir + os.sep)


def check_split_entries(source, lists, image_dir, remedy=""):
    """``lists``: ``[(key, [(relative path, label, class name), ...]), ...]``, ``train`` first."""
    train = dict(lists).get("train", [])
    num_classes = len({label for _, label, _ in train})
    name_of, label_of = {}, {}
    for key, entries in lists:
        for index, entry in enumerate(entries):
            rel, label, cname = entry
            if isinstance(label, bool) or not 0 <= label < num_classes:
                raise _entry_error(source, key, index, entry, f"label {label!r} is outside the class range 0..."
                                   f"{num_classes - 1} ({num_classes} classes in \"train\")", remedy)
            _check_names(source, key, index, entry, label, cname, name_of, label_of, remedy)
            if leaves_folder(rel):
                raise _entry_error(source, key, index, entry, f"the image path {rel!r} is not inside the image "
                                   f"folder {image_dir}", remedy)


def _check_names(source, key, index, entry, label, cname, name_of, label_of, remedy=""):
    if name_of.setdefault(label, cname) != cname:
        raise _entry_error(source, key, index, entry, f"label {label} is class {name_of[label]!r} elsewhere in "
                           "the file (one class name per label)", remedy)
    if label_of.setdefault(cname, label) != label:
        raise _entry_error(source, key, index, entry, f"class {cname!r} has label {label_of[cname]} elsewhere in "
                           "the file (one label per class name)", remedy)


def check_library_entries(source, lists, image_dir):
    """An image library's ``(key, [(relative path, label or None, class name), ...])`` lists: one label per class
    name and one class name per label where labels are given; relative paths inside ``image_dir``."""
    name_of, label_of = {}, {}
    for key, entries in lists:
        for index, entry in enumerate(entries):
            rel, label, cname = entry
            if label is not None:
                _check_names(source, key, index, entry, label, cname, name_of, label_of)
            if image_dir and not os.path.isabs(rel) and leaves_folder(rel):
                raise _entry_error(source, key, index, entry, f"the image path {rel!r} is not inside the image "
                                   f"folder {image_dir}")


def check_cache_entries(source, cached, split_entries, relative, remedy):
    """Every datum of a few-shot cache list is an entry of the split it was drawn from.

    ``cached``: ``{key: [datum, ...]}``; ``split_entries``: the set of (relative path, label, class name) of the
    split's lists the cache draws from; ``relative(impath)`` the path as the split entries hold it."""
    for key, datums in cached.items():
        for index, datum in enumerate(datums):
            entry = (relative(datum.impath), datum.label, datum.classname)
            if entry not in split_entries:
                raise _entry_error(source, key, index, entry, "not an entry of the dataset's split (another "
                                   "label, class name or image)", remedy)

"""The construction pipeline shared by every CoOp-style reader (docs/DATASETS.md), and its error messages."""
import os

from datasets.fewshot import fewshot_cache_path, fewshot_splits, subsample_classes
from datasets.image_errors import drop_unreadable
from datasets.splits import read_split, save_split, verify_images_exist
from datasets.toolbox import DatasetBase

DOCS = "docs/DATASETS.md"
RESTORE_HINT = ("; restore it from the dataset's archive (keep the split file as it is), or set "
                "DATASET.SKIP_UNREADABLE True to leave out such images (results.json counts them)")
PUBLISHED_SPLITS = "CoOp's DATASETS.md, github.com/KaiyangZhou/CoOp, links it"


def dataset_root(cfg):
    """``DATASET.ROOT`` as the reference resolves it: ``~`` expanded, relative to the working directory."""
    return os.path.abspath(os.path.expanduser(cfg.DATASET.ROOT))


def dataset_folder(cfg, name):
    """The dataset's folder ``<DATASET.ROOT>/<name>``. The reference README writes ``--root DATA/<name>``: a root
    that is itself the dataset's folder (it is named ``<name>`` and holds no ``<name>/`` inside) is read as that
    folder, with a note; a ``<name>/`` inside it is read as the reference code reads it."""
    root = dataset_root(cfg)
    folder = os.path.join(root, name)
    if not os.path.isdir(folder) and os.path.basename(root) == name and os.path.isdir(root):
        print(f"Note: DATASET.ROOT {root} is the {name} folder itself (--root DATA/{name}): reading the dataset there")
        return root
    return folder


def verify_fewshot_images(dataset_dir, cfg, train, val=None, cache_folder="split_fewshot"):
    """A cached few-shot draw may list images the split no longer has; name the cache to delete."""
    if cfg.DATASET.NUM_SHOTS >= 1:
        cache = fewshot_cache_path(dataset_dir, cfg.DATASET.NUM_SHOTS, cfg.SEED, cache_folder)
        verify_images_exist([*train, *(val or [])], hint=f" (listed in {cache}; delete it to draw again)")


class ReaderFiles:
    """Errors that name the missing folder or file and the docs section describing the expected layout.

    Needs ``self.dataset_dir`` (absolute) and a class attribute ``docs_section`` (an anchor in docs/DATASETS.md).
    """

    docs_section = ""

    def docs_ref(self):
        return f"{DOCS}#{self.docs_section}" if self.docs_section else DOCS

    def require_dir(self, path):
        if not os.path.isdir(path):
            raise FileNotFoundError(
                f"{type(self).__name__}: expected the folder {path} (DATASET.ROOT / --root is "
                f"{os.path.dirname(self.dataset_dir)}: the folder that holds the dataset folders, or the dataset's "
                f"folder itself); see {self.docs_ref()} for the layout"
            )
        return path

    def require_file(self, path, needed_for=""):
        """``needed_for`` says what the file is read for, e.g. that a split file is being generated."""
        if not os.path.isfile(path):
            why = f" {needed_for}" if needed_for else ""
            raise FileNotFoundError(
                f"{type(self).__name__}: expected the file {path}{why}; see {self.docs_ref()} for the layout"
            )
        return path

    def read_lines(self, path, needed_for="", keep_blank=False):
        """``(line number, stripped line)`` pairs; ``strip`` also removes Windows line ends.

        Blank lines are dropped (the reference crashes on them) unless the line index is a label, where
        ``keep_blank`` keeps them so labels match the reference's exactly.
        """
        with open(self.require_file(path, needed_for)) as f:
            return [(number, line.strip()) for number, line in enumerate(f, 1) if keep_blank or line.strip()]

    @staticmethod
    def line_error(path, number, line, expected):
        return ValueError(f"{path}, line {number}: expected {expected}, got {line!r}")

    def lookup(self, mapping, key, what, source):
        """``mapping[key]``, or an error saying which file lacks it (the reference raises a bare KeyError)."""
        try:
            return mapping[key]
        except KeyError:
            raise ValueError(
                f"{type(self).__name__}: {what} {key!r} is not listed in {source} (see {self.docs_ref()})"
            ) from None


class SplitDataset(ReaderFiles, DatasetBase):
    """A reader whose train/val/test lists come from ``split_zhou_<split_name>.json`` or its raw files.

    Subclasses set ``dataset_dir`` (the folder under ``DATASET.ROOT``), ``image_dir`` (the folder under it that
    split paths are relative to; empty for the dataset folder itself) and ``split_name`` (None: no split file),
    and implement ``read_raw`` for datasets whose split file can be generated.

    A benchmark's split (``fixed_split``) is an input the field's numbers are measured on: it is read, never
    written or drawn. ``DATASET.GENERATE_SPLIT True`` draws one here instead, once, into
    ``split_generated_<split_name>.json`` beside the published file, with its few-shot draws in
    ``split_fewshot_generated/``; ``record_notes`` (copied into ``results.json``) says so.
    ``DATASET.SKIP_UNREADABLE True`` leaves out the listed images that are missing or cannot be read, after the
    few-shot draw (so the draw and its cache stay those of the whole split); ``record_notes`` counts them.
    """

    dataset_dir = ""
    image_dir = ""
    split_name = None
    fixed_split = True  # False: a user's own data, whose split is drawn once and written (image_folder.py)

    def __init__(self, cfg):
        self.dataset_dir = dataset_folder(cfg, self.dataset_dir_name(cfg))
        image_dir = type(self).image_dir
        self.image_dir = os.path.join(self.dataset_dir, image_dir) if image_dir else self.dataset_dir
        self.generate = bool(cfg.DATASET.get("GENERATE_SPLIT", False)) and self.fixed_split and bool(self.split_name)
        split_file = self.split_file_name(cfg)
        if self.generate:
            split_file = f"split_generated_{self.split_name}.json"
        self.split_path = os.path.join(self.dataset_dir, split_file) if split_file else None
        self.record_notes = {"split_generated": self.split_path} if self.generate else {}
        self.require_dir(self.dataset_dir)
        cache_folder = "split_fewshot_generated" if self.generate else "split_fewshot"
        os.makedirs(os.path.join(self.dataset_dir, cache_folder), exist_ok=True)

        skip = bool(cfg.DATASET.get("SKIP_UNREADABLE", False))
        train, val, test = self.load_splits()
        if not skip:
            verify_images_exist([*train, *val, *test], hint=f" (see {self.docs_ref()}){RESTORE_HINT}")
        train, val = fewshot_splits(self.dataset_dir, cfg.DATASET.NUM_SHOTS, cfg.SEED, train, val,
                                    cache_folder=cache_folder, verify=not skip)
        if skip:
            (train, val, test), skipped = drop_unreadable(train, val, test)
            self.record_notes["unreadable_skipped"] = len(skipped)
            if skipped:
                print(f"DATASET.SKIP_UNREADABLE: left out {len(skipped)} listed image(s) that are missing or cannot "
                      f"be read (the first: {skipped[0]})")
        else:
            verify_fewshot_images(self.dataset_dir, cfg, train, val, cache_folder)
        train, val, test = subsample_classes(train, val, test, subsample=cfg.DATASET.SUBSAMPLE_CLASSES)
        super().__init__(train_x=train, val=val, test=test)

    def dataset_dir_name(self, cfg):
        return type(self).dataset_dir

    def split_file_name(self, cfg):
        return f"split_zhou_{self.split_name}.json" if self.split_name else None

    def load_splits(self):
        if self.split_path and os.path.exists(self.split_path):
            remedy = "; restore the published file" if self.fixed_split and not self.generate else \
                "; delete it to have it written again"
            return read_split(self.split_path, self.image_dir, remedy)
        if self.split_path and self.fixed_split and not self.generate:
            raise FileNotFoundError(
                f"{type(self).__name__}: the benchmark's split file {self.split_path} is missing: put the published "
                f"file there ({PUBLISHED_SPLITS}; see {self.docs_ref()}); a benchmark split is never drawn here. "
                "DATASET.GENERATE_SPLIT True uses a split drawn here instead (the record says so)")
        train, val, test = self.read_raw()
        if self.split_path:
            save_split(train, val, test, self.split_path, self.image_dir)
        return train, val, test

    def read_raw(self):
        raise FileNotFoundError(f"Split file not found: {self.split_path} (see {self.docs_ref()})")

    def raw_file(self, *parts):
        """A raw annotation file under the dataset folder, required because the split file is missing."""
        return self.require_file(os.path.join(self.dataset_dir, *parts), self.needed_for())

    def needed_for(self):
        if self.split_path and self.generate:
            return (f"(read to generate {os.path.basename(self.split_path)}, which does not exist yet, as "
                    f"DATASET.GENERATE_SPLIT is True; the published split_zhou_{self.split_name}.json needs none)")
        if self.split_path:
            return f"(read to generate {os.path.basename(self.split_path)}, which does not exist yet)"
        return ""

"""An unreadable image names its file, wherever it is read (a training batch, a test batch, a negative image).

Images are not decoded up front: a corrupt file in a 100k-image dataset would otherwise cost a full decode pass
before every run. It is reported by the first read, with its path, and the run stops there.
"""
from datasets.toolbox import DatasetWrapper, read_image

IMAGE_ERRORS = (OSError, ValueError, SyntaxError)  # what PIL raises for missing, truncated or foreign files


def unreadable_image(path, err):
    # Not "remove it and the split file": a benchmark's split is never redrawn (datasets/benchmark.py)
    return OSError(f"Cannot read the image {path} ({type(err).__name__}: {err}); restore it from the dataset's "
                   "archive (keep the split file as it is), or set DATASET.SKIP_UNREADABLE True to leave out the "
                   "listed images that cannot be read (results.json counts them)")


def drop_unreadable(*lists):
    """``(lists without the images that are missing or cannot be decoded, [their paths])``: every image is read
    once (only under ``DATASET.SKIP_UNREADABLE``, which asks for it)."""
    verdict = {}

    def readable(path):
        if path not in verdict:
            try:
                read_image(path)
                verdict[path] = True
            except IMAGE_ERRORS:
                verdict[path] = False
        return verdict[path]

    kept = tuple(None if items is None else [item for item in items if readable(item.impath)] for items in lists)
    return kept, sorted(path for path, ok in verdict.items() if not ok)


def read_image_naming_errors(path):
    try:
        return read_image(path)
    except IMAGE_ERRORS as err:
        raise unreadable_image(path, err) from None


class NamingDatasetWrapper(DatasetWrapper):
    """The seam's ``DatasetWrapper`` (Dassl's or the built-in one), with the file named in read errors."""

    def __getitem__(self, idx):
        try:
            return super().__getitem__(idx)
        except IMAGE_ERRORS as err:
            raise unreadable_image(self.data_source[idx].impath, err) from None

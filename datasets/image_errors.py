"""An unreadable image names its file, wherever it is read (a training batch, a test batch, a negative image).

Images are not decoded up front: a corrupt file in a 100k-image dataset would otherwise cost a full decode pass
before every run. It is reported by the first read, with its path, and the run stops there.
"""
from datasets.toolbox import DatasetWrapper, read_image

IMAGE_ERRORS = (OSError, ValueError, SyntaxError)  # what PIL raises for missing, truncated or foreign files


def unreadable_image(path, err):
    return OSError(f"Cannot read the image {path} ({type(err).__name__}: {err}); replace or remove it "
                   "(and delete the split file that lists it)")


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

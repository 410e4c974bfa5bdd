"""``Datum`` and ``DatasetBase``: the built-in stand-ins for Dassl's classes of the same names.

Unlike Dassl, ``Datum`` does not stat its image on construction: readers check whole splits at once
(``datasets.splits.verify_images_exist``), which is much faster on 100k-image datasets and gives one
error naming the missing file instead of a bare ``AssertionError``.
"""


class Datum:
    """One sample: image path, label, domain and class name (read-only, as in Dassl)."""

    def __init__(self, impath="", label=0, domain=0, classname=""):
        if not isinstance(impath, str):
            raise TypeError(f"Datum.impath must be a str, got {type(impath).__name__}")
        self._impath = impath
        self._label = label
        self._domain = domain
        self._classname = classname

    @property
    def impath(self):
        return self._impath

    @property
    def label(self):
        return self._label

    @property
    def domain(self):
        return self._domain

    @property
    def classname(self):
        return self._classname

    def __repr__(self):
        return f"Datum(impath={self._impath!r}, label={self._label}, classname={self._classname!r})"


class DatasetBase:
    """Holds the splits; class count and names are derived from ``train_x`` only (Dassl's rule)."""

    dataset_dir = ""
    domains = []

    def __init__(self, train_x=None, train_u=None, val=None, test=None):
        self._train_x = train_x
        self._train_u = train_u
        self._val = val
        self._test = test
        self._num_classes = self.get_num_classes(train_x)
        self._lab2cname, self._classnames = self.get_lab2cname(train_x)

    @property
    def train_x(self):
        return self._train_x

    @property
    def train_u(self):
        return self._train_u

    @property
    def val(self):
        return self._val

    @property
    def test(self):
        return self._test

    @property
    def lab2cname(self):
        return self._lab2cname

    @property
    def classnames(self):
        return self._classnames

    @property
    def num_classes(self):
        return self._num_classes

    @staticmethod
    def get_num_classes(data_source):
        return max(item.label for item in data_source) + 1

    @staticmethod
    def get_lab2cname(data_source):
        pairs = {(item.label, item.classname) for item in data_source}
        lab2cname = {label: name for label, name in pairs}
        classnames = [lab2cname[label] for label in sorted(lab2cname)]
        return lab2cname, classnames

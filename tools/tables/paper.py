"""The DPC paper's base-to-new numbers (CVPR 2025, Table 1), carried in
``tools/tables/reference/dpc_paper_results.json``.

The file is a copy of the project's reference data; only the tables read it, so it lives beside them.
Methods are keyed ``CoOp`` / ``CoOp+DPC``; datasets by ``DATASET.NAME`` (``OxfordFlowers``), which is what
every ``results.json`` records.
"""
import json
import os

PAPER_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference", "dpc_paper_results.json")


def paper_method_key(host, dpc):
    return f"{host}+DPC" if dpc else host


class PaperResults:
    def __init__(self, data):
        self.data = data
        self.datasets = list(data.get("datasets", []))
        self.labels = dict(zip(self.datasets, data.get("dataset_labels", self.datasets)))

    @classmethod
    def load(cls, path=PAPER_FILE):
        with open(path) as f:
            return cls(json.load(f))

    def row(self, method_key, dataset_name):
        """(base, new, hm) of ``method_key`` on ``dataset_name``, or None when the paper has no such number."""
        values = self.data.get("methods", {}).get(method_key, {}).get(dataset_name)
        return tuple(values) if values else None

    def has_method(self, method_key):
        return method_key in self.data.get("methods", {})

    def average(self, method_key):
        values = self.data.get("average", {}).get(method_key)
        return tuple(values) if values else None

    def label(self, dataset_name):
        return self.labels.get(dataset_name, dataset_name)

    def order(self, dataset_name):
        """Sort key: the paper's row order first, then everything else."""
        return self.datasets.index(dataset_name) if dataset_name in self.datasets else len(self.datasets)

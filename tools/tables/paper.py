"""The DPC paper's numbers (CVPR 2025): base-to-new (Table 1), the component ablation and the two weight sweeps
(CoOp, 11-dataset averages), carried in ``tools/tables/reference/dpc_paper_results.json``.

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

    def ablation(self, row):
        """(base, new, hm) of an ablation row (``CoOp``, ``TS``, ..., ``DPC``) on CoOp, or None. The file names
        the last row ``DPC (TS+DHNO+WE+DE)``."""
        for entry in self.data.get("ablation_coop_average", {}).get("rows", []):
            if entry["setting"] == row or entry["setting"].startswith(f"{row} ("):
                return entry["base"], entry["new"], entry["hm"]
        return None

    def sweep(self, metric, key_name):
        """``{value: accuracy}`` of the paper's sweep plotting ``metric`` against ``key_name`` (``base`` against
        ``weight_base``) on CoOp; {} when the paper has none."""
        points = self.data.get("weight_sweeps_coop_average", {}).get(f"{metric}_vs_{key_name}", {})
        return {float(value): accuracy for value, accuracy in points.items()}

    def label(self, dataset_name):
        return self.labels.get(dataset_name, dataset_name)

    def order(self, dataset_name):
        """Sort key: the paper's row order first, then everything else."""
        return self.datasets.index(dataset_name) if dataset_name in self.datasets else len(self.datasets)

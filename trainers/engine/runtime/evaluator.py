"""The classification evaluator: Dassl's ``=> result`` block, including macro-F1."""
from collections import OrderedDict

import numpy as np
import torch

from datasets.runtime.registry import Registry, check_availability

EVALUATOR_REGISTRY = Registry("EVALUATOR")


def macro_f1(y_true, y_pred):
    """Mean F1 over the labels present in ``y_true`` (sklearn's ``average="macro", labels=unique(y_true)``)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    scores = []
    for label in np.unique(y_true):
        tp = np.sum((y_pred == label) & (y_true == label))
        fp = np.sum((y_pred == label) & (y_true != label))
        fn = np.sum((y_pred != label) & (y_true == label))
        scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores)) if scores else 0.0


@EVALUATOR_REGISTRY.register()
class Classification:
    def __init__(self, cfg, lab2cname=None, **kwargs):
        self.cfg = cfg
        self._lab2cname = lab2cname
        self.reset()

    def reset(self):
        self._correct = 0
        self._total = 0
        self._y_true = []
        self._y_pred = []

    def process(self, mo, gt):
        pred = mo.max(1)[1]
        self._correct += int(pred.eq(gt).sum().item())
        self._total += gt.shape[0]
        self._y_true.extend(gt.cpu().tolist())
        self._y_pred.extend(pred.cpu().tolist())

    def evaluate(self):
        acc = 100.0 * self._correct / max(self._total, 1)
        err = 100.0 - acc
        f1 = 100.0 * macro_f1(self._y_true, self._y_pred)
        print(
            "=> result\n"
            f"* total: {self._total:,}\n"
            f"* correct: {self._correct:,}\n"
            f"* accuracy: {acc:.2f}%\n"
            f"* error: {err:.2f}%\n"
            f"* macro_f1: {f1:.2f}%"
        )
        results = OrderedDict(accuracy=acc, error_rate=err, macro_f1=f1)
        if self.cfg.TEST.PER_CLASS_RESULT:
            results["perclass_accuracy"] = self._per_class(results)
        return results

    def _per_class(self, results):
        y_true = torch.tensor(self._y_true)
        y_pred = torch.tensor(self._y_pred)
        print("=> per-class result")
        accs = []
        for label in sorted(set(self._y_true)):
            mask = y_true == label
            correct, total = int((y_pred[mask] == label).sum()), int(mask.sum())
            acc = 100.0 * correct / total
            accs.append(acc)
            name = self._lab2cname.get(label, str(label)) if self._lab2cname else str(label)
            print(f"* class: {label} ({name})\ttotal: {total:,}\tcorrect: {correct:,}\tacc: {acc:.2f}%")
        print(f"* average: {np.mean(accs):.2f}%")
        return float(np.mean(accs))


def build_evaluator(cfg, **kwargs):
    check_availability(cfg.TEST.EVALUATOR, EVALUATOR_REGISTRY.registered_names(), kind="evaluator")
    return EVALUATOR_REGISTRY.get(cfg.TEST.EVALUATOR)(cfg, **kwargs)

"""The built-in runtime's classification evaluator: accuracy, macro-F1 (over the labels present) and Dassl's
printed block with two decimals (Dassl prints one). These tests exercise the built-in runtime's functions
directly, so they hold in the Dassl pass too; what the project reads back from either evaluator is tested in
``test_run_record.py``."""
import pytest
import torch

from trainers.engine.runtime import build_evaluator, compute_accuracy, get_cfg_default

# 10 samples, 4 true classes; one prediction (4) is a class absent from the ground truth.
Y_TRUE = [0, 0, 0, 1, 1, 2, 2, 2, 2, 3]
Y_PRED = [0, 0, 1, 1, 2, 2, 2, 0, 2, 4]
# By hand: correct = 6. F1 per true label: 0: 2*2/(4+1+1) = 2/3; 1: 2/(2+1+1) = 1/2; 2: 6/(6+1+1) = 3/4; 3: 0.
MACRO_F1 = 100 * (2 / 3 + 1 / 2 + 3 / 4 + 0) / 4  # 47.9166...; counting label 4 too would give 38.33


def logits_for(preds, num_classes=5):
    out = torch.full((len(preds), num_classes), -1.0)
    out[torch.arange(len(preds)), torch.tensor(preds)] = 2.0
    return out


def make_evaluator(per_class=False):
    cfg = get_cfg_default()
    cfg.TEST.PER_CLASS_RESULT = per_class
    return build_evaluator(cfg, lab2cname={0: "cat", 1: "dog", 2: "sea_lion", 3: "owl", 4: "bee"})


def test_accuracy_and_macro_f1_against_hand_computed(capsys):
    evaluator = make_evaluator()
    evaluator.process(logits_for(Y_PRED[:4]), torch.tensor(Y_TRUE[:4]))  # two batches accumulate
    evaluator.process(logits_for(Y_PRED[4:]), torch.tensor(Y_TRUE[4:]))
    results = evaluator.evaluate()
    assert list(results)[0] == "accuracy"  # trainer.test() returns the first value
    assert results["accuracy"] == pytest.approx(60.0)
    assert results["error_rate"] == pytest.approx(40.0)
    assert results["macro_f1"] == pytest.approx(MACRO_F1)
    assert capsys.readouterr().out.splitlines() == [
        "=> result",
        "* total: 10",
        "* correct: 6",
        "* accuracy: 60.00%",
        "* error: 40.00%",
        "* macro_f1: 47.92%",
    ]


def test_reset_and_thousands_separators(capsys):
    evaluator = make_evaluator()
    evaluator.process(logits_for([0, 1]), torch.tensor([1, 0]))
    evaluator.reset()
    labels = torch.arange(1200) % 3
    evaluator.process(logits_for(labels.tolist(), 3), labels)
    results = evaluator.evaluate()
    assert results["accuracy"] == 100.0 and results["macro_f1"] == pytest.approx(100.0)
    out = capsys.readouterr().out
    assert "* total: 1,200\n* correct: 1,200\n* accuracy: 100.00%\n* error: 0.00%\n* macro_f1: 100.00%" in out


def test_per_class_result(capsys):
    evaluator = make_evaluator(per_class=True)
    evaluator.process(logits_for(Y_PRED), torch.tensor(Y_TRUE))
    results = evaluator.evaluate()
    lines = capsys.readouterr().out.splitlines()
    assert lines[6:] == [
        "=> per-class result",
        "* class: 0 (cat)\ttotal: 3\tcorrect: 2\tacc: 66.67%",
        "* class: 1 (dog)\ttotal: 2\tcorrect: 1\tacc: 50.00%",
        "* class: 2 (sea_lion)\ttotal: 4\tcorrect: 3\tacc: 75.00%",
        "* class: 3 (owl)\ttotal: 1\tcorrect: 0\tacc: 0.00%",
        "* average: 47.92%",
    ]
    assert results["perclass_accuracy"] == pytest.approx((200 / 3 + 50 + 75 + 0) / 4)


def test_compute_accuracy_topk():
    output = torch.tensor([[0.1, 0.5, 0.4], [0.8, 0.1, 0.1], [0.2, 0.3, 0.5], [0.35, 0.25, 0.4]])
    target = torch.tensor([2, 0, 1, 1])
    top1, top2 = compute_accuracy(output, target, topk=(1, 2))
    assert top1.item() == pytest.approx(25.0) and top2.item() == pytest.approx(75.0)


def test_unknown_evaluator():
    cfg = get_cfg_default()
    cfg.TEST.EVALUATOR = "Clasification"
    with pytest.raises(ValueError, match="Classification"):
        build_evaluator(cfg)

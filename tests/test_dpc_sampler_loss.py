"""DHNO's sampler and loss on small tensors."""
import pytest
import torch
import torch.nn.functional as F

from trainers.dpc.loss import batch_classes, symmetric_infonce
from trainers.dpc.negatives import select_negatives


def test_candidates_are_topk_without_ground_truth_and_in_batch_classes():
    scores = torch.tensor([
        [9.0, 8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0],  # gt 0 is in its top-4: K-1 = 3 candidates
        [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],  # gt 1 is not in its top-4: K = 4 candidates
    ])
    labels = torch.tensor([0, 1])
    negatives = select_negatives(scores, labels, topk=4, min_negatives=0)
    assert negatives[0] == [2, 3]  # class 1 is the other sample's ground truth
    # Sample 1's top-4 is 7, 6, 5, 4: none used yet, none its gt, so all K of them.
    assert negatives[1] == [7, 6, 5, 4]


def test_no_class_appears_twice_and_ground_truths_are_never_negatives():
    torch.manual_seed(0)
    scores = torch.randn(6, 20)
    labels = torch.tensor([3, 3, 7, 0, 11, 19])
    negatives = select_negatives(scores, labels, topk=8, min_negatives=2)
    flat = [c for per_sample in negatives for c in per_sample]
    assert len(flat) == len(set(flat))
    assert not set(flat) & set(labels.tolist())
    assert all(len(n) <= 8 for n in negatives)


def test_random_top_up_reaches_min_negatives_and_can_draw_class_zero():
    # Every top-K candidate is taken by the batch, so negatives come from the random top-up only.
    scores = torch.tensor([[0.0, 1.0, 5.0, 4.0], [0.0, 1.0, 4.0, 5.0]])
    labels = torch.tensor([2, 3])
    drawn = set()
    for seed in range(20):
        torch.manual_seed(seed)
        negatives = select_negatives(scores, labels, topk=2, min_negatives=1)
        assert all(len(n) == 1 for n in negatives)
        drawn.update(c for n in negatives for c in n)
    assert drawn == {0, 1}


def test_topk_larger_than_class_count_is_clamped():
    scores = torch.randn(2, 5)
    negatives = select_negatives(scores, torch.tensor([0, 1]), topk=8, min_negatives=2)
    assert sorted(c for n in negatives for c in n) == [2, 3, 4]


def test_available_classes_restrict_negatives():
    scores = torch.arange(10.0).repeat(2, 1)
    negatives = select_negatives(scores, torch.tensor([0, 1]), topk=5, min_negatives=3, available={2, 3, 4})
    assert {c for n in negatives for c in n} <= {2, 3, 4}


def test_loss_equals_straightforward_computation_with_distinct_labels():
    torch.manual_seed(0)
    num_classes, dim = 10, 16
    image_features = torch.randn(5, dim)
    all_text_features = torch.randn(num_classes, dim)
    labels = torch.tensor([4, 1, 8, 0, 6])
    scale = 100.0

    # Ours: text features of the classes present only.
    classes, targets = batch_classes(labels)
    text = all_text_features[classes]
    logits = scale * F.normalize(image_features, dim=-1) @ F.normalize(text, dim=-1).t()
    ours = symmetric_infonce(logits, targets)

    # Straightforward: all classes encoded, one row gathered per image, the M x M matrix with diagonal targets.
    gathered = F.normalize(all_text_features, dim=-1)[labels]
    full = scale * F.normalize(image_features, dim=-1) @ gathered.t()
    eye = torch.arange(5)
    expected = 0.5 * (F.cross_entropy(full, eye) + F.cross_entropy(full.t(), eye))
    assert torch.allclose(ours, expected, atol=1e-6)


def test_repeated_ground_truth_gives_one_text_row_with_both_images_positive():
    logits = torch.tensor([[5.0, 1.0], [4.0, 0.0], [0.0, 3.0]])  # images 0, 1 of class 0; image 2 of class 1
    classes, targets = batch_classes(torch.tensor([7, 7, 2]))
    assert classes.tolist() == [2, 7] and targets.tolist() == [1, 1, 0]
    logits = logits[:, [1, 0]]  # columns in the order of ``classes``
    loss = symmetric_infonce(logits, targets)
    row = F.cross_entropy(logits, targets)
    log_p = F.log_softmax(logits.t(), dim=1)
    column = -(0.5 * (log_p[1, 0] + log_p[1, 1]) + log_p[0, 2]) / 2
    assert loss.item() == pytest.approx(0.5 * (row + column).item(), abs=1e-6)

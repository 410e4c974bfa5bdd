"""The Dynamic Hard Negative Optimizer's sampler: which classes each image is contrasted against."""
import torch


def select_negatives(scores, labels, topk, min_negatives, available=None):
    """Choose negative classes per sample, in batch order.

    scores: (B, C) frozen-prompt scores on the CPU; labels: (B,) ground truths.
    Candidates are the top-K classes (K clamped to C) with the ground truth removed, so K-1 or K of them as
    in the released code; every class already in the batch (all ground truths and earlier samples'
    negatives) is dropped, so no class appears twice in the contrastive batch; when fewer than
    ``min_negatives`` remain, uniformly random unused classes (any class, 0 included, drawn with the global
    torch RNG) top the sample up. ``available`` (a set) restricts negatives to classes that have pool images.
    Returns one list of class indices per sample.
    """
    num_classes = scores.shape[1]
    k = min(topk, num_classes)
    top = scores.topk(k, dim=1).indices.tolist()
    label_list = labels.tolist()
    used = set(label_list)
    allowed = set(range(num_classes)) if available is None else set(available)
    negatives = []
    for gt, ranked in zip(label_list, top):
        chosen = [c for c in ranked if c != gt and c not in used and c in allowed]
        if len(chosen) < min_negatives:
            spare = sorted(allowed - used - set(chosen))
            order = torch.randperm(len(spare)).tolist()
            chosen += [spare[i] for i in order[:min_negatives - len(chosen)]]
        used.update(chosen)
        negatives.append(chosen)
    return negatives

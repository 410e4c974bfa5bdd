"""DHNO's loss: symmetric InfoNCE between images and the text features of the classes in the batch."""
import torch
import torch.nn.functional as F


def symmetric_infonce(logits, targets):
    """logits (M, U): M images against U distinct classes; targets (M,): each image's class column.

    Image -> text: cross-entropy over the U classes. Text -> image: each class's positives are all images of
    that class, weighted equally (one text row per class; a repeated ground truth therefore never becomes
    a negative of itself). With distinct labels (U = M) this is the usual ``(CE(L, y) + CE(L^T, y)) / 2``.
    """
    image_to_text = F.cross_entropy(logits, targets)
    positives = F.one_hot(targets, logits.shape[1]).t().to(logits.dtype)  # (U, M)
    text_to_image = F.cross_entropy(logits.t(), positives / positives.sum(dim=1, keepdim=True))
    return 0.5 * (image_to_text + text_to_image)


def batch_classes(labels):
    """The distinct classes of the batch (sorted) and each image's column among them."""
    classes, targets = torch.unique(labels, sorted=True, return_inverse=True)
    return classes, targets

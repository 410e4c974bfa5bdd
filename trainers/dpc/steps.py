"""DPC's training steps, one ahead: while step i trains, step i+1 is scored and its negative images load.

A step's negatives depend only on the frozen prompt P, so they can be chosen before the previous step has
updated P'. ``DPC.forward_backward`` runs one step in this order, and nothing else does any of it:
  1. wait for step i's negative images (requested while step i-1 ran);
  2. launch the scoring of step i+1 with P (the training loader hands each step its batch and the next one,
     ``BatchesWithNext``);
  3. launch step i's loss and backward;
  4. choose step i+1's negatives from its scores (on CUDA a wait for the device, which is busy with 3) and start
     loading their images in the background.
Nothing random runs between 3 and 4, so the random draws keep the order of choosing right after scoring. The
negative pool serves one request at a time: step 1 comes before step 4's request.
"""
from dataclasses import dataclass

import torch


class BatchesWithNext:
    """The training loader as DPC trains on it: each item is ``(batch, next batch or None)``."""

    def __init__(self, loader):
        self.loader = loader

    def __len__(self):
        return len(self.loader)

    @property
    def sampler(self):
        return self.loader.sampler

    def __iter__(self):
        batches = iter(self.loader)
        batch = next(batches, None)
        while batch is not None:
            upcoming = next(batches, None)
            yield batch, upcoming
            batch = upcoming


class ScoresOnHost:
    """A step's scores and labels on their way to the CPU: on CUDA an asynchronous copy into pinned memory and an
    event, so that launching it does not wait for the device; ``wait()`` returns the CPU tensors."""

    def __init__(self, scores, labels):
        self.event = None
        if scores.device.type == "cuda":
            self.scores = torch.empty(scores.shape, dtype=scores.dtype, pin_memory=True)
            self.labels = torch.empty(labels.shape, dtype=labels.dtype, pin_memory=True)
            self.scores.copy_(scores, non_blocking=True)
            self.labels.copy_(labels, non_blocking=True)
            self.event = torch.cuda.Event()
            self.event.record()
        else:
            self.scores, self.labels = scores.cpu(), labels.cpu()

    def wait(self):
        if self.event is not None:
            self.event.synchronize()
        return self.scores, self.labels


@dataclass(frozen=True)
class ScoredBatch:
    """A batch scored with P (step 2): its negatives are chosen from ``scores`` later (step 4)."""

    images: torch.Tensor  # the B anchors
    labels: torch.Tensor
    anchor_features: object  # the anchors' image features, when P' shares P's (no image prompts); else None
    scores: ScoresOnHost


@dataclass(frozen=True)
class StepAhead:
    """Step i+1 while step i trains: scored, its negatives chosen and their images loading."""

    batch: ScoredBatch
    negative_classes: list  # one class per negative image, in batch order
    pending: object  # the negative images being loaded

    def collect(self):
        """Step 1: wait for the negative images; the step as DHNO trains on it."""
        return Step(self.batch.images, self.batch.labels, self.batch.anchor_features, self.negative_classes,
                    self.pending.collect())


@dataclass(frozen=True)
class Step:
    """What one DHNO step trains on: the anchors and their negative images."""

    images: torch.Tensor
    labels: torch.Tensor
    anchor_features: object
    negative_classes: list
    negative_images: torch.Tensor  # None when no negative could be drawn

    def contrastive_batch(self):
        """The M = B + #negatives images DHNO contrasts, and their labels."""
        if self.negative_images is None:
            return self.images, self.labels
        images = torch.cat([self.images, self.negative_images.to(self.images.device, self.images.dtype)])
        negatives = torch.tensor(self.negative_classes, device=self.labels.device, dtype=self.labels.dtype)
        return images, torch.cat([self.labels, negatives])

    @property
    def negatives_per_anchor(self):
        return len(self.negative_classes) / len(self.labels)

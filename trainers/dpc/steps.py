"""DPC's training steps, prepared one ahead: while step i trains, the images of step i+1's negatives load.

A step's negatives depend only on the frozen prompt P, so they can be chosen before the previous step has
updated P'. ``PreparedSteps`` wraps the training loader and yields ``PreparedStep``s: before handing out step i it
waits for step i's negative images and prepares step i+1 (scores it with P, selects its negatives, starts
loading their images). The negative pool serves one request at a time, hence the wait before the next request.
"""
from dataclasses import dataclass

import torch


@dataclass
class PreparedStep:
    images: torch.Tensor  # the B anchors
    labels: torch.Tensor
    anchor_features: object  # the anchors' image features, when P' shares P's (no image prompts); else None
    negative_classes: list  # one class per negative image, in batch order
    pending: object  # the negative images being loaded; ``collect_negatives`` waits for them
    negative_images: torch.Tensor = None

    def collect_negatives(self):
        if self.pending is not None:
            self.negative_images, self.pending = self.pending.collect(), None

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


class PreparedSteps:
    """The training loader as DPC trains on it: ``PreparedStep``s made by ``prepare(batch)``, one step ahead."""

    def __init__(self, loader, prepare):
        self.loader = loader
        self.prepare = prepare

    def __len__(self):
        return len(self.loader)

    @property
    def sampler(self):
        return self.loader.sampler

    def __iter__(self):
        batches = iter(self.loader)
        batch, prepared = next(batches, None), None
        while batch is not None:
            upcoming = next(batches, None)
            step = prepared or self.prepare(batch)
            step.collect_negatives()
            prepared = self.prepare(upcoming) if upcoming is not None else None
            yield step
            batch = upcoming

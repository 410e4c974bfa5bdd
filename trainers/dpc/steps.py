"""DPC's training steps, prepared one ahead: while step i trains, the images of step i+1's negatives load.

A step's negatives depend only on the frozen prompt P, so they can be chosen before the previous step has
updated P'. ``PreparedSteps`` wraps the training loader and yields ``PreparedStep``s: before handing out step i it
waits for step i's negative images and launches the scoring of step i+1 with P. Choosing step i+1's negatives needs
its scores on the CPU, a wait for the device: the trainer calls ``step.prepare_following()`` once step i's loss and
backward are launched, so that the device is never idle while the CPU chooses; the negative images then start
loading in the background. (Nothing random runs in between: the draws of the random generators keep their order.)
The negative pool serves one request at a time, hence the wait before the next request.
"""
from dataclasses import dataclass

import torch


@dataclass
class PreparedStep:
    images: torch.Tensor  # the B anchors
    labels: torch.Tensor
    anchor_features: object  # the anchors' image features, when P' shares P's (no image prompts); else None
    choose_negatives: object  # () -> (negative classes, pending images): waits for the scores, then requests
    negative_classes: list = None  # one class per negative image, in batch order
    pending: object = None  # the negative images being loaded; ``collect_negatives`` waits for them
    negative_images: torch.Tensor = None
    following: object = None  # the next step, launched; ``prepare_following`` chooses its negatives

    def finish_preparation(self):
        if self.choose_negatives is not None:
            (self.negative_classes, self.pending), self.choose_negatives = self.choose_negatives(), None

    def prepare_following(self):
        """Choose the next step's negatives and start loading their images (call it once this step is launched)."""
        if self.following is not None:
            self.following.finish_preparation()

    def collect_negatives(self):
        self.finish_preparation()
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
            step.following = prepared
            yield step
            step.prepare_following()  # if the trainer did not
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

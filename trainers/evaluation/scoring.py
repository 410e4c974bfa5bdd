"""The test loop's logits, batch by batch, and where its image features come from.

``ModelInference``: ``model_inference`` on every batch (any trainer). ``ScoredBatches``: through a trainer's
``FeatureScorer`` -- logits as a function of the images' features, so that text features that do not depend on the
image are computed once per test, and, with a ``FeatureCache``, features of a frozen image encoder are read
instead of encoded: a batch whose every image is cached is read (its images are not even decoded); a batch with a
miss is loaded and encoded whole, in the loader's own batch, so the features are those the uncached loop gets,
and its missing entries are stored.
"""
import os
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn
from torch.utils.data import DataLoader


@dataclass
class FeatureScorer:
    encode: Callable  # images -> image features
    logits: Callable  # image features -> logits
    # CLIP's image tower (``clip_model.visual``) when the features are its own, the same in every run: cacheable
    frozen_encoder: nn.Module = None


def host_scorer(host, frozen_image_features):
    """The test of a host model (or DPC's host under its routed prompts): all classes' text features once, unless
    they depend on the image; ``frozen_image_features``: the image side is CLIP's own, untouched by prompts."""
    text = []

    def logits(features):
        if host.text_depends_on_image:
            return host.head(features, host.encode_text(None, features))
        if not text:
            text.append(host.encode_text(None, None))
        return host.head(features, text[0])

    return FeatureScorer(host.encode_image, logits, host.image_encoder.visual if frozen_image_features else None)


class ModelInference:
    def __init__(self, trainer, loader):
        self.trainer, self.loader = trainer, loader

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        for batch in self.loader:
            images, labels = self.trainer.parse_batch_test(batch)
            with self.trainer.autocast():
                yield self.trainer.model_inference(images), labels


class ScoredBatches:
    def __init__(self, trainer, loader, scorer, cache=None):
        self.trainer, self.loader, self.scorer, self.cache = trainer, loader, scorer, cache

    def __len__(self):
        return len(self.loader)

    def encode(self, images):
        with self.trainer.autocast():
            return self.scorer.encode(images)

    def __iter__(self):
        batches = self.feature_batches() if self.cache is None else self.cached_feature_batches()
        for features, labels in batches:
            with self.trainer.autocast():
                yield self.scorer.logits(features), labels
        if self.cache is not None:
            print(f"Test features: {self.cache.read:,} images read from the feature cache, {self.cache.encoded:,} "
                  f"encoded ({self.cache.folder})")

    def feature_batches(self):
        for batch in self.loader:
            images, labels = self.trainer.parse_batch_test(batch)
            yield self.encode(images), labels

    def cached_feature_batches(self):
        cache, loader, device = self.cache, self.loader, self.trainer.device
        items = loader.dataset.data_source
        batches = [list(indices) for indices in loader.batch_sampler]
        paths = [[cache.entry_path(items[i].impath, len(indices)) for i in indices] for indices in batches]
        to_encode = [j for j, batch_paths in enumerate(paths) if not all(map(os.path.isfile, batch_paths))]
        fresh = iter(DataLoader(loader.dataset, batch_sampler=[batches[j] for j in to_encode],
                                num_workers=loader.num_workers, pin_memory=loader.pin_memory) if to_encode else ())
        to_encode = set(to_encode)
        for j, (indices, batch_paths) in enumerate(zip(batches, paths)):
            if j in to_encode:
                images, labels = self.trainer.parse_batch_test(next(fresh))
                features = self.encode(images)
                for path, row in zip(batch_paths, features):
                    if not os.path.isfile(path):
                        cache.store(path, row)
                cache.encoded += len(indices)
            else:
                rows = [cache.load(path) for path in batch_paths]
                if None in rows:  # an unreadable entry: encode its batch (the same bits), rewrite what was bad
                    images, labels = self.trainer.parse_batch_test(
                        next(iter(DataLoader(loader.dataset, batch_sampler=[indices]))))
                    features = self.encode(images)
                    for path, row, fresh_row in zip(batch_paths, rows, features):
                        if row is None:
                            cache.store(path, fresh_row)
                    cache.encoded += len(indices)
                    yield features, labels
                    continue
                features = torch.stack(rows).to(device)
                labels = torch.tensor([items[i].label for i in indices], device=device)
                cache.read += len(indices)
            yield features, labels

"""Test-image features of a frozen, unprompted image encoder, kept on disk so that no run encodes them again.

Zero-shot CLIP, CoOp, KgCoOp, CoCoOp and DPC over them evaluate with CLIP's own image encoder, untouched by any
prompt, so a test image's features are the same in every one of their runs. ``FeatureCache`` keeps them in one
small file per entry under ``TEST.FEATURE_CACHE`` (the pipeline and the demo use ``<output root>/.feature_cache``).

An entry is exact: its key covers everything the features depend on --
- the encoder: a hash of its weights, their dtype, the device type and whether autocast runs;
- the test transform (its repr lists sizes, interpolation, crop and normalisation);
- the image file: absolute path, size and modification time (an edited file is a miss);
- the size of the batch it was encoded in: BLAS picks its kernels by shape, so a feature can differ in its
  last bits with the batch size. Misses are encoded in the test loader's own batches (a batch with one miss is
  encoded whole), so cached and freshly computed logits are bit-identical.
Writes are atomic (``datasets/atomic_write.py``), so parallel runs that compute
the same entry each write a complete file and readers never see a partial one. An entry that cannot be read all
the same (empty or truncated: copied by hand, or left by an older release on a full disk) is a miss: it is
encoded again and rewritten, with one line naming it.
"""
import hashlib
import os
import pickle

import torch

from datasets.atomic_write import replace_atomically, write_error


def weights_hash(module):
    """sha256 of a module's parameters and buffers: names, dtypes, shapes and bytes."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def encoder_key(encoder, transform, device, autocast):
    """What an entry's features depend on, besides the image and its batch: one string."""
    dtype = next(encoder.parameters()).dtype
    return f"{weights_hash(encoder)}|{dtype}|{torch.device(device).type}|autocast={autocast}|{transform!r}"


class FeatureCache:
    def __init__(self, folder, key):
        self.folder = folder
        self.key = key
        self.read = self.encoded = 0  # test images read from the cache, and encoded

    def entry_path(self, impath, batch_size):
        stat = os.stat(impath)
        text = f"{self.key}|{os.path.abspath(impath)}|{stat.st_size}|{stat.st_mtime_ns}|batch={batch_size}"
        name = hashlib.sha256(text.encode()).hexdigest()
        return os.path.join(self.folder, name[:2], name + ".pt")

    @staticmethod
    def load(path):
        """One image's features, or None when the entry cannot be read (then it is encoded and written again)."""
        try:
            row = torch.load(path, map_location="cpu", weights_only=True)
        except (EOFError, RuntimeError, OSError, ValueError, pickle.UnpicklingError) as err:
            reason = "empty" if os.path.isfile(path) and os.path.getsize(path) == 0 else \
                f"truncated or not a tensor file: {' '.join(str(err).split())[:80]}"
        else:
            if isinstance(row, torch.Tensor) and row.dim() == 1:
                return row
            reason = f"holds a {type(row).__name__}, not one image's feature vector"
        print(f"Feature cache entry {path} cannot be read ({reason}); encoding it again")
        return None

    @staticmethod
    def store(path, features):
        """Write ``features`` (one image's) to ``path`` atomically."""
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
        except OSError as err:
            raise write_error(path, "the feature cache entry", err) from None
        row = features.detach().cpu().clone()  # a clone: a row alone, not its batch's storage
        replace_atomically(path, lambda tmp: torch.save(row, tmp), "the feature cache entry")

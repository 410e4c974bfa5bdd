"""Checkpoint files in Dassl's layout, owned by the project so that they behave the same under both runtimes.

A model's folder ``<run>/<model name>/`` holds ``model.pth.tar-<epoch>`` files, ``model-best.pth.tar`` and a
``checkpoint`` text file naming the latest one, as Dassl writes them; a checkpoint written under Dassl loads under
the built-in runtime and back. Unlike Dassl's ``save_checkpoint``, every file (the pointer too) is written to a
temporary file and renamed, so a crash never leaves a truncated file; unlike Dassl's ``load_checkpoint``, files
are read with ``weights_only=True`` where the file allows it, on any torch from 1.13 on.
"""
import os
import pickle
import re
import shutil
from collections import OrderedDict

import torch

from datasets.atomic_write import replace_atomically

POINTER_FILE = "checkpoint"
BEST_FILE = "model-best.pth.tar"
_EPOCH_FILE = re.compile(r"^model\.pth\.tar-(\d+)$")


def write_text_atomically(path, text):
    def write(tmp):
        with open(tmp, "w") as f:
            f.write(text)
    replace_atomically(path, write)


def save_checkpoint(state, save_dir, is_best=False, model_name="", note=""):
    """Save ``state`` as ``model.pth.tar-<epoch>`` (or ``model_name``) and point the ``checkpoint`` file at it;
    ``note`` ends the log line."""
    os.makedirs(save_dir, exist_ok=True)
    state["state_dict"] = OrderedDict(
        (key[len("module."):] if key.startswith("module.") else key, value)
        for key, value in state["state_dict"].items()
    )
    fpath = os.path.join(save_dir, model_name or f"model.pth.tar-{state['epoch']}")
    try:
        replace_atomically(fpath, lambda tmp: torch.save(state, tmp))
    except (RuntimeError, OSError) as err:  # e.g. a full disk: torch reports it from its zip writer
        raise OSError(f"Could not write the checkpoint {fpath} ({' '.join(str(err).split())[:200]}); "
                      "the previous checkpoint is intact") from None
    print(f"Checkpoint saved to {fpath}{note}")
    write_text_atomically(os.path.join(save_dir, POINTER_FILE), f"{os.path.basename(fpath)}\n")
    if is_best:
        replace_atomically(os.path.join(save_dir, BEST_FILE), lambda tmp: shutil.copyfile(fpath, tmp))
    return fpath


def load_checkpoint(fpath):
    """Load on the CPU. Our checkpoints hold tensors, numbers and strings only (``weights_only``); files of other
    tools that pickle more (e.g. a scheduler object) are loaded in full, as Dassl does."""
    if not fpath:
        raise ValueError("load_checkpoint: the file path is empty")
    if not os.path.isfile(fpath):
        raise FileNotFoundError(f'No checkpoint file at "{fpath}"')
    try:
        return torch.load(fpath, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # the weights-only unpickler's refusal: not a file of ours
        pass
    except (RuntimeError, OSError, EOFError, ValueError) as err:
        raise _unreadable(fpath, err) from None
    try:
        return torch.load(fpath, map_location="cpu", weights_only=False)
    except Exception as err:  # noqa: BLE001 - whatever the unpickler meets, the file is not a checkpoint
        raise _unreadable(fpath, err) from None


def _unreadable(fpath, err):
    return ValueError(f"Checkpoint {fpath} cannot be read ({' '.join(str(err).split())[:200]}): it is truncated "
                      "or not a checkpoint; delete it (its run resumes from an earlier one, or starts again)")


def epoch_checkpoints(model_dir):
    """``model.pth.tar-<epoch>`` file names in the folder, newest epoch first."""
    names = os.listdir(model_dir) if os.path.isdir(model_dir) else []
    numbered = [(int(m.group(1)), name) for name in names if (m := _EPOCH_FILE.match(name))]
    return [name for _, name in sorted(numbered, reverse=True)]


def latest_checkpoint(model_dir):
    """The checkpoint the pointer file names; without a usable pointer, the newest epoch file; else None."""
    try:
        with open(os.path.join(model_dir, POINTER_FILE)) as f:
            named = f.readline().strip()
    except OSError:
        named = ""
    if named and os.path.isfile(os.path.join(model_dir, named)):
        return os.path.join(model_dir, named)
    newest = epoch_checkpoints(model_dir)
    return os.path.join(model_dir, newest[0]) if newest else None

"""Checkpoint files in Dassl's layout, owned by the project so that they behave the same under both runtimes.

A model's folder ``<run>/<model name>/`` holds ``model.pth.tar-<epoch>`` files, ``model-best.pth.tar`` and a
``checkpoint`` text file naming the latest one, as Dassl writes them; a checkpoint written under Dassl loads under
the built-in runtime and back. Unlike Dassl's ``save_checkpoint``, every file (the pointer too) is written to a
temporary file and renamed, so a crash never leaves a truncated file; unlike Dassl's ``load_checkpoint``, files
are read by torch's weights-only unpickler, which runs no code from the file (``datasets/pickle_safety.py``).
"""
import contextlib
import os
import pickle
import re
import shutil
from collections import OrderedDict

import torch

from datasets.atomic_write import replace_atomically
from datasets.pickle_safety import UntrustedPickleError, note_trusted_read, trusting

POINTER_FILE = "checkpoint"
BEST_FILE = "model-best.pth.tar"
_EPOCH_FILE = re.compile(r"^model\.pth\.tar-(\d+)$")


def write_text_atomically(path, text, what="the file"):
    def write(tmp):
        with open(tmp, "w") as f:
            f.write(text)
    replace_atomically(path, write, what)


def save_checkpoint(state, save_dir, is_best=False, model_name="", note=""):
    """Save ``state`` as ``model.pth.tar-<epoch>`` (or ``model_name``) and point the ``checkpoint`` file at it;
    ``note`` ends the log line."""
    os.makedirs(save_dir, exist_ok=True)
    state["state_dict"] = OrderedDict(
        (key[len("module."):] if key.startswith("module.") else key, value)
        for key, value in state["state_dict"].items()
    )
    fpath = os.path.join(save_dir, model_name or f"model.pth.tar-{state['epoch']}")
    replace_atomically(fpath, lambda tmp: torch.save(state, tmp), "the checkpoint")
    print(f"Checkpoint saved to {fpath}{note}")
    write_text_atomically(os.path.join(save_dir, POINTER_FILE), f"{os.path.basename(fpath)}\n",
                          "the checkpoint pointer")
    if is_best:
        replace_atomically(os.path.join(save_dir, BEST_FILE), lambda tmp: shutil.copyfile(fpath, tmp),
                           "the best checkpoint")
    return fpath


def _dict_for_defaultdict(default_factory=None):
    """Stands in for ``collections.defaultdict``: an optimiser's ``state`` is one, and the weights-only unpickler
    fills plain dicts only. Nothing reads a missing key of a loaded optimiser state, so a dict does."""
    return {}


def reference_checkpoint_globals():
    """What the CoOp family's own checkpoints pickle besides tensors, numbers and strings, and nothing more.

    Dassl saves ``scheduler.state_dict()``; its warm-up schedulers (every CoOp-family config warms up) keep their
    successor scheduler as an attribute, so the successor object is pickled, and with it the optimiser it steps.
    These are the schedulers and optimisers Dassl builds (``build_lr_scheduler``, ``build_optimizer``; its
    ``radam`` is not offered here, see ``trainers/engine/optim.py``). Rebuilding them calls torch's own
    ``__new__`` and ``__setstate__``, never a function the file names.
    """
    lr = torch.optim.lr_scheduler
    return [lr.StepLR, lr.MultiStepLR, lr.CosineAnnealingLR,
            torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW, torch.optim.RMSprop,
            dict, (_dict_for_defaultdict, "collections.defaultdict")]


def load_checkpoint(fpath):
    """Load on the CPU with the weights-only unpickler, admitting ``reference_checkpoint_globals``. A file that
    asks for anything else is refused (``UntrustedPickleError``) before it is unpickled, unless the run trusts
    pickled files (``TRUST_PICKLED_FILES``): then it is loaded in full, and the run records that."""
    if not fpath:
        raise ValueError("load_checkpoint: the file path is empty")
    if not os.path.isfile(fpath):
        raise FileNotFoundError(f'No checkpoint file at "{fpath}"')
    try:
        with _admitting(reference_checkpoint_globals()):
            return torch.load(fpath, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:  # the weights-only unpickler's refusal: it called nothing it refused
        refusal = UntrustedPickleError(fpath, _refused_global(fpath, err))
    except (RuntimeError, OSError, EOFError, ValueError) as err:
        raise _unreadable(fpath, err) from None
    if not trusting():
        raise refusal
    try:
        checkpoint = torch.load(fpath, map_location="cpu", weights_only=False)
    except Exception as err:  # noqa: BLE001 - whatever the unpickler meets, the file is not a checkpoint
        raise _unreadable(fpath, err) from None
    note_trusted_read(fpath)
    return checkpoint


def _admitting(names):
    """torch's allow-list for the weights-only unpickler (torch >= 2.5; older ones admit tensors alone)."""
    safe_globals = getattr(torch.serialization, "safe_globals", None)
    return safe_globals(names) if safe_globals is not None else contextlib.nullcontext()


def _refused_global(fpath, err):
    """The first class or function the file names outside the allow-list (read from the pickle, not called)."""
    allowed = {entry[1] if isinstance(entry, tuple) else f"{entry.__module__}.{entry.__qualname__}"
               for entry in reference_checkpoint_globals()}
    try:
        names = [n for n in torch.serialization.get_unsafe_globals_in_checkpoint(fpath) if n not in allowed]
    except Exception:  # noqa: BLE001 - a legacy (non-zip) file: the unpickler's message names it
        names = []
    if names:
        return ", ".join(names)
    found = re.search(r"GLOBAL ([\w.]+)|unrecognized function ([^\s]+)", str(err))
    return next((g for g in found.groups() if g), "an object") if found else "an object the unpickler refused"


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

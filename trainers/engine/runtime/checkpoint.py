"""Checkpoints in Dassl's layout: ``<dir>/model.pth.tar-<epoch>``, a ``checkpoint`` text file, ``model-best``."""
import os
import shutil
from collections import OrderedDict

import torch


def mkdir_if_missing(dirname):
    os.makedirs(dirname, exist_ok=True)


def atomic_torch_save(obj, fpath):
    """Write to a temporary file and rename, so a crash never leaves a truncated checkpoint behind."""
    tmp = fpath + ".tmp"
    torch.save(obj, tmp)
    os.replace(tmp, fpath)


def save_checkpoint(state, save_dir, is_best=False, remove_module_from_keys=True, model_name=""):
    mkdir_if_missing(save_dir)
    if remove_module_from_keys:
        state["state_dict"] = OrderedDict(
            (key[len("module."):] if key.startswith("module.") else key, value)
            for key, value in state["state_dict"].items()
        )
    if not model_name:
        model_name = "model.pth.tar-" + str(state["epoch"])
    fpath = os.path.join(save_dir, model_name)
    atomic_torch_save(state, fpath)
    print(f"Checkpoint saved to {fpath}")
    with open(os.path.join(save_dir, "checkpoint"), "w") as f:
        f.write(f"{os.path.basename(fpath)}\n")
    if is_best:
        shutil.copy(fpath, os.path.join(os.path.dirname(fpath), "model-best.pth.tar"))


def load_checkpoint(fpath):
    """Load on the CPU. Our checkpoints are plain tensors and dicts (``weights_only``); older files that
    pickle other objects (e.g. numpy scalars in ``val_result``) fall back to a full load."""
    if not fpath:
        raise ValueError("load_checkpoint: the file path is empty")
    if not os.path.exists(fpath):
        raise FileNotFoundError(f'No checkpoint file at "{fpath}"')
    try:
        return torch.load(fpath, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - any unpickling refusal means "not a weights-only file"
        return torch.load(fpath, map_location="cpu", weights_only=False)


def resume_from_checkpoint(fdir, model, optimizer=None, scheduler=None):
    with open(os.path.join(fdir, "checkpoint")) as f:
        fpath = os.path.join(fdir, f.readline().strip())
    print(f'Loading checkpoint from "{fpath}"')
    checkpoint = load_checkpoint(fpath)
    model.load_state_dict(checkpoint["state_dict"])
    print("Loaded model weights")
    if optimizer is not None and "optimizer" in checkpoint:
        optimizer.load_state_dict(checkpoint["optimizer"])
        print("Loaded optimizer")
    if scheduler is not None and "scheduler" in checkpoint:
        scheduler.load_state_dict(checkpoint["scheduler"])
        print("Loaded scheduler")
    start_epoch = checkpoint["epoch"]
    print(f"Previous epoch: {start_epoch}")
    return start_epoch


def load_pretrained_weights(model, weight_path):
    checkpoint = load_checkpoint(weight_path)
    state_dict = checkpoint.get("state_dict", checkpoint)
    state_dict = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state_dict.items()}
    missing, unexpected = model.load_state_dict(state_dict, strict=False)
    print(f'Loaded pretrained weights from "{weight_path}" (missing: {missing}, unexpected: {unexpected})')

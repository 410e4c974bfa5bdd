"""CLIP weights: a model name (downloaded once to a cache, SHA-checked) or a local ``.pt`` file.

The local file may be OpenAI's JIT archive or a plain state dict of ``clip.model.CLIP`` of any size;
``build_model`` infers the architecture (and so the input resolution) from the weights.
"""
import functools
import os
import zipfile

import torch

import clip
from clip.clip import _MODELS, _download

DEFAULT_CACHE_DIR = os.path.join(os.path.expanduser("~"), ".cache", "clip")


def resolve_weights_file(name, cache_dir=""):
    """The local file for ``MODEL.BACKBONE.NAME``: an existing path, or a known model name downloaded once."""
    expanded = os.path.expanduser(name)
    if os.path.isfile(expanded):
        return os.path.abspath(expanded)
    if name in _MODELS:
        root = os.path.expanduser(cache_dir or DEFAULT_CACHE_DIR)
        try:
            return _download(_MODELS[name], root)  # reuses a cached file when its SHA256 matches
        except Exception as err:  # noqa: BLE001 - urllib/ssl/socket errors all mean "no download possible"
            target = os.path.join(root, os.path.basename(_MODELS[name]))
            raise RuntimeError(
                f"Could not download the CLIP weights for MODEL.BACKBONE.NAME={name!r} ({err}). On a machine "
                f"without internet, copy the file to {target} or set MODEL.BACKBONE.NAME to a local .pt file."
            ) from err
    raise FileNotFoundError(
        f"MODEL.BACKBONE.NAME={name!r} is neither a file nor a CLIP model name; "
        f"model names: {', '.join(_MODELS)}"
    )


def load_state_dict(path):
    """The weights on the CPU as saved (fp16 for OpenAI's archives); cached, so building twice reads once."""
    stat = os.stat(path)
    return _load_state_dict(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=2)
def _load_state_dict(path, mtime_ns, size):
    if _is_torchscript_archive(path):
        return torch.jit.load(path, map_location="cpu").eval().state_dict()
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict) or "text_projection" not in state:
        raise ValueError(f"{path} is neither an OpenAI CLIP archive nor a state dict of clip.model.CLIP")
    return state


def load_clip(name, device="cpu", fp32=True, cache_dir=""):
    """Build the stock ``clip.model.CLIP`` in eval mode: fp16 weights as released, or all fp32 when asked."""
    state = load_state_dict(resolve_weights_file(name, cache_dir))
    model = clip.model.build_model(dict(state))  # build_model pops keys: give it a copy
    if fp32:
        model.float()
    return model.to(device).eval()


def _is_torchscript_archive(path):
    """OpenAI's releases are TorchScript archives: zip files with a ``constants.pkl`` entry."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("/constants.pkl") or name == "constants.pkl" for name in archive.namelist())


def input_resolution(name, cache_dir=""):
    """The image size the weights expect (ViT: from the positional embedding; ResNet: from the attnpool)."""
    state = load_state_dict(resolve_weights_file(name, cache_dir))
    if "visual.proj" in state:
        grid = round((state["visual.positional_embedding"].shape[0] - 1) ** 0.5)
        return state["visual.conv1.weight"].shape[-1] * grid
    grid = round((state["visual.attnpool.positional_embedding"].shape[0] - 1) ** 0.5)
    return grid * 32

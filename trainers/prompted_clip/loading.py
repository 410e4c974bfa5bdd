"""CLIP weights: a model name (downloaded once to a cache, SHA-checked) or a local ``.pt`` file.

The local file may be OpenAI's JIT archive, a plain state dict of ``clip.model.CLIP`` of any size, or the
*compact* format below; ``build_model`` infers the architecture (and so the input resolution) from the weights.

Compact format (``save_compact_clip``): a small CLIP's token embedding is most of its size (49408 rows), but
a model used with a fixed vocabulary (the demo world) needs only a few rows. The file is a dict
``{"format": COMPACT_FORMAT, "state_dict": <every tensor but token_embedding.weight>, "vocab_size": int,
"token_ids": LongTensor (n,), "token_rows": Tensor (n, width)}``, usually in fp16; loading rebuilds the full
table with zeros in the rows that were not kept, so the rest of the code sees a plain state dict.
"""
import functools
import os
import zipfile

import clip
import torch
from clip.clip import _MODELS, _download

from datasets.atomic_write import replace_atomically

DEFAULT_CACHE_DIR = os.path.join(os.path.expanduser("~"), ".cache", "clip")
COMPACT_FORMAT = "clip-token-rows/v1"
TOKEN_TABLE = "token_embedding.weight"


def resolve_weights_file(name, cache_dir=""):
    """The local file for ``MODEL.BACKBONE.NAME``: an existing path, or a known model name downloaded once."""
    expanded = os.path.expanduser(name)
    if os.path.isfile(expanded):
        return os.path.abspath(expanded)
    if name in _MODELS:
        root = os.path.expanduser(cache_dir or DEFAULT_CACHE_DIR)
        try:
            return _download(_MODELS[name], root)  # reuses a cached file when its SHA256 matches
        except Exception as err:  # noqa: BLE001 - urllib, ssl, socket and checksum errors: no usable download
            target = os.path.join(root, os.path.basename(_MODELS[name]))
            raise FileNotFoundError(  # a missing input (exit status 2, one line), not a bug
                f"Could not download the CLIP weights for MODEL.BACKBONE.NAME={name!r} "
                f"({' '.join(str(err).split())[:160]}). On a machine without internet, copy the file to {target} "
                "or set MODEL.BACKBONE.NAME to a local .pt file."
            ) from None
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
    try:
        if _is_torchscript_archive(path):
            return torch.jit.load(path, map_location="cpu").eval().state_dict()
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - whatever the unpickler meets, the file is not usable weights
        raise ValueError(f"CLIP weights {path} cannot be read ({' '.join(str(err).split())[:200]}): the file is "
                         "truncated or not a torch file; download or copy it again") from None
    if isinstance(state, dict) and "format" in state:
        state = expand_compact_state_dict(state, path)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict) or "text_projection" not in state:
        raise ValueError(f"{path} is neither an OpenAI CLIP archive nor a state dict of clip.model.CLIP")
    return state


def compact_state_dict(state_dict, token_ids, dtype=torch.float16):
    """The compact form of a CLIP state dict keeping the token-embedding rows ``token_ids`` (see the module doc)."""
    table = state_dict[TOKEN_TABLE]
    ids = torch.as_tensor(sorted({int(i) for i in token_ids}), dtype=torch.long)
    rest = {key: value.detach().to(dtype) if value.is_floating_point() else value.detach()
            for key, value in state_dict.items() if key != TOKEN_TABLE}
    return {"format": COMPACT_FORMAT, "state_dict": rest, "vocab_size": table.shape[0],
            "token_ids": ids, "token_rows": table.detach()[ids].to(dtype)}


def save_compact_clip(model_or_state, path, token_ids, dtype=torch.float16):
    """Write a CLIP (module or state dict) in the compact format; ``MODEL.BACKBONE.NAME <path>`` loads it."""
    state = model_or_state.state_dict() if isinstance(model_or_state, torch.nn.Module) else model_or_state
    compact = compact_state_dict(state, token_ids, dtype)
    replace_atomically(path, lambda tmp: torch.save(compact, tmp))
    return path


def expand_compact_state_dict(data, path=""):
    """A plain state dict from the compact format: the full token table, zeros where no row was kept."""
    if data["format"] != COMPACT_FORMAT:
        raise ValueError(f"{path}: unknown CLIP weights format {data['format']!r} (this code reads {COMPACT_FORMAT!r})")
    rows, ids = data["token_rows"], data["token_ids"]
    table = torch.zeros(data["vocab_size"], rows.shape[1], dtype=rows.dtype)
    table[ids] = rows
    return {**data["state_dict"], TOKEN_TABLE: table}


def load_clip(name, device="cpu", fp32=True, cache_dir=""):
    """Build the stock ``clip.model.CLIP`` in eval mode: fp16 weights as released, or all fp32 when asked."""
    path = resolve_weights_file(name, cache_dir)
    state = load_state_dict(path)
    try:
        model = clip.model.build_model(dict(state))  # build_model pops keys: give it a copy
    except (KeyError, RuntimeError, IndexError, ValueError, AttributeError) as err:  # a key missing, a shape off
        raise not_clip_weights(path, err) from None
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
    path = resolve_weights_file(name, cache_dir)
    state = load_state_dict(path)
    try:
        if "visual.proj" in state:
            grid = round((state["visual.positional_embedding"].shape[0] - 1) ** 0.5)
            return state["visual.conv1.weight"].shape[-1] * grid
        grid = round((state["visual.attnpool.positional_embedding"].shape[0] - 1) ** 0.5)
        return grid * 32
    except KeyError as err:
        raise not_clip_weights(path, err) from None


def not_clip_weights(path, err):
    """The one-line error for weights that ``clip.model.build_model`` cannot build a CLIP from."""
    if isinstance(err, KeyError):
        detail = f"the key {err.args[0]!r} is missing"
    else:  # load_state_dict's "Missing key(s) in state_dict: ..." and shape mismatches, first part
        detail = " ".join(str(err).split())[:240]
    return ValueError(f"CLIP weights {path} are not a complete clip.model.CLIP state dict ({detail}); download or "
                      "copy the file again, or set MODEL.BACKBONE.NAME to the CLIP weights you meant")

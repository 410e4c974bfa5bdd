"""What a checkpoint records of the host whose prompts it holds, so that the host can be rebuilt exactly.

A host's settings are every key of its config node (``TRAINER.<node>``), the backbone, the input normalisation
its prompts saw and ``MODEL.REFERENCE_PARITY``. Host checkpoints record them, and so do DPC's, under ``"host"``:
``{"trainer": <registered name>, "settings": {<dotted key>: <value>}}``. Keys that change how the host computes or
trains but not what its prompts are (``PREC``, the model's ``overridable_settings``, the input normalisation,
the parity switch) may differ when it is rebuilt; the others may not (``trainers/dpc/stage1.py`` applies the rule).
"""
from trainers.engine.config import get_key, has_key

BACKBONE_KEY = "MODEL.BACKBONE.NAME"
INPUT_KEYS = ("INPUT.INTERPOLATION", "INPUT.PIXEL_MEAN", "INPUT.PIXEL_STD")
PARITY_KEY = "MODEL.REFERENCE_PARITY"


def plain(value):
    """A config value as a checkpoint stores it and compares it (tuples and lists alike)."""
    return [plain(v) for v in value] if isinstance(value, (list, tuple)) else value


def host_settings(cfg, model_class):
    node = f"TRAINER.{model_class.config_node}"
    keys = [f"{node}.{key}" for key in get_key(cfg, node)] + [BACKBONE_KEY, *INPUT_KEYS, PARITY_KEY]
    return {key: plain(get_key(cfg, key)) for key in keys}


def host_record(cfg, trainer_name, model_class):
    return {"trainer": trainer_name, "settings": host_settings(cfg, model_class)}


def is_overridable(key, model_class):
    """Whether the host may be rebuilt with another value of ``key`` and still hold the same prompts."""
    if key in INPUT_KEYS or key == PARITY_KEY:
        return True
    node = f"TRAINER.{model_class.config_node}."
    return key.startswith(node) and key[len(node):] in model_class.overridable_settings


# The node keys that decide how many prompt vectors exist, and their sizes (MMRL's tokens, layers and ranks).
SHAPE_KEY_PARTS = ("N_CTX", "CTX_INIT", "CSC", "DEPTH", "N_REP_TOKENS", "REP_DIM", "REP_LAYERS", "LORA_DIM")


def prompt_shape_keys(cfg, node_name, recorded=None):
    """``KEY (value here)`` for the keys of ``TRAINER.<node_name>`` that shape the prompts (the context length, its
    initialising words, class-specific contexts, prompt depths) and the backbone (the vectors' width); with the
    checkpoint's ``recorded`` settings, ``KEY (value here, value there)`` for those that differ, listed first."""
    keys = [BACKBONE_KEY]
    if node_name and has_key(cfg, f"TRAINER.{node_name}"):
        node = get_key(cfg, f"TRAINER.{node_name}")
        keys = [f"TRAINER.{node_name}.{key}" for key in node if any(part in key for part in SHAPE_KEY_PARTS)] + keys
    recorded = recorded or {}
    differing = [k for k in keys if k in recorded and plain(get_key(cfg, k)) != recorded[k]]
    return ([f"{k} ({get_key(cfg, k)!r} here, {recorded[k]!r} there)" for k in differing]
            + [f"{k} ({get_key(cfg, k)!r})" for k in keys if k not in differing])

"""The config keys that shape a trainer's prompts, named in the error of a checkpoint that does not fit its model.

``ClipTrainer.load_model`` names them for any trainer; the host settings a checkpoint records
(``trainers/host_api/settings.py``) compare values as ``plain`` gives them.
"""
from trainers.run.config_keys import get_key, has_key

BACKBONE_KEY = "MODEL.BACKBONE.NAME"


def plain(value):
    """A config value as a checkpoint stores it and compares it (tuples and lists alike)."""
    return [plain(v) for v in value] if isinstance(value, (list, tuple)) else value


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

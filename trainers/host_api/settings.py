"""What a checkpoint records of the host whose prompts it holds, so that the host can be rebuilt exactly.

A host's settings are every key of its config node (``TRAINER.<node>``), the backbone, the input normalisation
its prompts saw and ``MODEL.REFERENCE_PARITY``. Host checkpoints record them, and so do DPC's, under ``"host"``:
``{"trainer": <registered name>, "settings": {<dotted key>: <value>}}``. Keys that change how the host computes or
trains but not what its prompts are (``PREC``, the model's ``overridable_settings``, the input normalisation,
the parity switch) may differ when it is rebuilt; the others may not (``trainers/dpc/stage1.py`` applies the rule).
"""
from trainers.engine.prompt_shape import BACKBONE_KEY, plain
from trainers.run.config_keys import get_key

INPUT_KEYS = ("INPUT.INTERPOLATION", "INPUT.PIXEL_MEAN", "INPUT.PIXEL_STD")
PARITY_KEY = "MODEL.REFERENCE_PARITY"


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

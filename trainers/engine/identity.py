"""A run's identity: what it computes, so that resume refuses another run's checkpoint, a finished run is
recognised, and the pipeline reruns a run whose record does not match its plan.

The identity is the trainer, dataset, classes, shots, seed, whether it only evaluates, and a hash of the resolved
config, plus what the trainer adds (``identity_extra``: the host DPC wraps). It is computed here and nowhere
else: by the trainer for its checkpoints and ``results.json``, by the finished-run check of ``train.py`` and by
the pipeline for a planned run, each from a resolved config.
"""
import hashlib
import json

import yaml

from trainers.engine import TRAINER_REGISTRY
from trainers.run.config_keys import get_key, has_key

# Keys that do not change what a run computes: where it reads and writes, how much it prints, how many data
# workers it uses (a resumed run may use another count; bit-exactness holds for the same count).
IDENTITY_IGNORED_KEYS = (
    "OUTPUT_DIR", "RESUME", "DATASET.ROOT", "VERBOSE", "TRAIN.PRINT_FREQ", "DATALOADER.NUM_WORKERS",
    "TRAINER.DPC.BACKBONE_DIR", "SPLE.BACK_CKPT_PATH",  # the stage-1 run is tracked by its run id instead
    "TRAINER.DPC.ALLOW_UNFINISHED_STAGE1",  # whether an unfinished stage 1 is accepted; the record says which it was
    "TEST.FEATURE_CACHE",  # exact: where features are kept does not change a result
    "DETERMINISTIC",  # how CUDA picks kernels (the CPU's results are the same bits either way)
    "TRUST_PICKLED_FILES",  # which files may be read, not what a run computes
    "MODEL.TEXT_CHUNK",  # the same features, gradients to rounding; a new key must not make finished runs stale
    # off by default, and recorded in results.json when on (split_generated, unreadable_skipped); new keys must not
    # make finished runs stale
    "DATASET.GENERATE_SPLIT", "DATASET.SKIP_UNREADABLE",
)

# Keys added after runs were recorded, with the default that computes what those runs computed: at that default a
# key is left out of the hash, so a finished run stays finished; any other value is hashed as usual.
IDENTITY_KEYS_NEW_AT_DEFAULT = {"TRAINER.DPC.DHNO": True}


def config_hash(cfg, trainer_nodes=None):
    """16 hex digits of the resolved config, without ``IDENTITY_IGNORED_KEYS``. With ``trainer_nodes``, of the
    ``TRAINER`` nodes only those the run reads: registering another trainer leaves every hash as it was."""
    config = yaml.safe_load(cfg.dump())
    if trainer_nodes is not None:
        config["TRAINER"] = {key: value for key, value in config["TRAINER"].items()
                             if key == "NAME" or key in trainer_nodes}
    for dotted in IDENTITY_IGNORED_KEYS:
        parent, _, leaf = dotted.rpartition(".")
        if has_key(config, parent):
            get_key(config, parent).pop(leaf, None)
    for dotted, default in IDENTITY_KEYS_NEW_AT_DEFAULT.items():
        parent, _, leaf = dotted.rpartition(".")
        if has_key(config, parent) and get_key(config, parent).get(leaf) == default:
            get_key(config, parent).pop(leaf)
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def run_identity(cfg, eval_only=False, trainer_class=None):
    """The identity a run of ``cfg`` records; ``trainer_class`` defaults to the registered ``cfg.TRAINER.NAME``."""
    if trainer_class is None:
        trainer_class = TRAINER_REGISTRY.get(cfg.TRAINER.NAME)
    return {
        "trainer": cfg.TRAINER.NAME,
        "dataset": cfg.DATASET.NAME,
        "subsample_classes": cfg.DATASET.SUBSAMPLE_CLASSES,
        "num_shots": cfg.DATASET.NUM_SHOTS,
        "seed": cfg.SEED,
        "eval_only": bool(eval_only),
        "config_hash": config_hash(cfg, trainer_class.identity_nodes(cfg)),
        **trainer_class.identity_extra(cfg),
    }


def identity_differences(recorded, expected):
    """``key: recorded -> expected`` for every identity field that differs (config_hash included)."""
    return [f"{key}: {recorded.get(key)!r} there, {expected.get(key)!r} here"
            for key in expected if recorded.get(key) != expected.get(key)]

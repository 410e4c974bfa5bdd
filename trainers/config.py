"""The project's config keys on top of Dassl's defaults (the anchors' ``extend_cfg``).

Each trainer module adds its own node with ``@config_extension``; ``extend_cfg`` applies them all, and
``build_cfg`` builds a run's whole config.
"""
import os

import yaml
from yacs.config import CfgNode as CN

_EXTENSIONS = []


def config_extension(fn):
    _EXTENSIONS.append(fn)
    return fn


def extend_cfg(cfg):
    cfg.DATASET.SUBSAMPLE_CLASSES = "all"  # all, base or new (base-to-new protocol)
    cfg.DATASET.FOLDER = ""  # ImageFolder: the folder under DATASET.ROOT
    cfg.MODEL.BACKBONE.CACHE_DIR = ""  # where named CLIP weights are downloaded; "" = ~/.cache/clip
    cfg.MODEL.REFERENCE_PARITY = False  # compute as the reference implementations do, bit for bit (slower)
    # text prompts per text-encoder chunk, recomputed in the backward (prompted_clip/text_chunks.py); 0 = all at once
    cfg.MODEL.TEXT_CHUNK = 128
    # a folder for test-image features of frozen image encoders ("": none), trainers/feature_cache.py
    cfg.TEST.FEATURE_CACHE = ""
    for extend in _EXTENSIONS:
        extend(cfg)
    return cfg


def new_node(**defaults):
    node = CN()
    for key, value in defaults.items():
        setattr(node, key, value)
    return node


class ConfigError(ValueError):
    """A config file, key or value that cannot be used; raised before any run is touched."""


BASE_KEY = "_BASE_"  # an alias file names the config it extends (a path relative to the alias file)


def merge_config_file(cfg, path, chain=()):
    """Merge a yaml file into ``cfg``. A file with a top-level ``_BASE_: <path>`` (relative to the file) is an
    alias: the named config is merged first, then the file's own keys (``configs/trainers/SPLE/`` holds such
    aliases for the reference code's config paths)."""
    if not os.path.isfile(path):
        raise ConfigError(f"Config file not found: {path}" + (f" (the {BASE_KEY} of {chain[-1]})" if chain else ""))
    if os.path.abspath(path) in chain:
        raise ConfigError(f"{path}: {BASE_KEY} chain loops back to itself ({' -> '.join(chain)})")
    try:
        with open(path) as f:
            content = yaml.safe_load(f) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {' '.join(str(err).split())}") from None
    if not isinstance(content, dict):
        raise ConfigError(f"{path} does not hold a mapping of config keys")
    base = content.pop(BASE_KEY, None)
    if base is not None:
        if not isinstance(base, str) or not base:
            raise ConfigError(f"{path}: {BASE_KEY} must be the path of a config file, got {base!r}")
        merge_config_file(cfg, os.path.join(os.path.dirname(path), base), (*chain, os.path.abspath(path)))
    try:
        cfg.merge_from_other_cfg(CN(content))
    except (KeyError, AssertionError, ValueError, TypeError) as err:
        raise ConfigError(f"{path}: {_yacs_message(err)}") from None


def _yacs_message(err):
    text = err.args[0] if err.args else str(err)
    return f"{text} (a key this project and its toolbox do not define)" if "Non-existent" in str(text) else text


def _set(cfg, dotted, value):
    *parents, leaf = dotted.split(".")
    node = cfg
    for part in parents:
        node = getattr(node, part)
    setattr(node, leaf, value)


def build_cfg(config_files=(), opts=(), flags=None, trainer=None):
    """The run's config: Dassl's defaults, the project's keys, the yaml files in order, the command-line flags
    (``flags``: dotted key -> value, set as they are), then the KEY VALUE ``opts``; then the trainer's own
    resolution (``ClipTrainer.resolve_config``: aliases, defaults that depend on other keys), so that what is
    printed and recorded is what runs. Returned frozen.

    ``train.py``, the pipeline, DPC and the tests all build configs here.
    """
    from .engine import TRAINER_REGISTRY, get_cfg_default

    cfg = extend_cfg(get_cfg_default())
    for path in config_files:
        if path:
            merge_config_file(cfg, path)
    for key, value in (flags or {}).items():
        _set(cfg, key, value)
    opts = [str(value) for value in opts]
    if len(opts) % 2:
        raise ConfigError(f"Options must come in KEY VALUE pairs; got an odd list: {opts}")
    try:
        cfg.merge_from_list(opts)
    except (KeyError, AssertionError, ValueError, TypeError) as err:
        raise ConfigError(f"Command-line option: {_yacs_message(err)}") from None
    name = trainer or cfg.TRAINER.NAME
    if name in TRAINER_REGISTRY.registered_names():
        resolve = getattr(TRAINER_REGISTRY.get(name), "resolve_config", None)
        if resolve is not None:
            resolve(cfg)
    cfg.freeze()
    return cfg

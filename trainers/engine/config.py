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
    # True: each host computes in its reference's order, slower (docs/HOSTS.md, "Reference parity"): all 77 text
    # positions; prompts cast after copying; ROUND_PROMPTS_FP16 True for IVLP, PromptSRC, MaPLe unless written
    # (a written False wins, logged); one normalisation per tower for head and loss (PromptSRC, KgCoOp); KgCoOp's
    # hand-made features from fp16 CLIP; CoCoOp's head per image; MMRL's maps once per step. Measured from outside,
    # that order is the references' logits, loss and gradients bit for bit (CoOp, CoCoOp, KgCoOp, IVLP, MaPLe,
    # PromptSRC, MMRL, MMRL++)
    cfg.MODEL.REFERENCE_PARITY = False
    # a folder for test-image features of frozen image encoders ("": none), trainers/evaluation/feature_cache.py
    cfg.TEST.FEATURE_CACHE = ""
    # text prompts per text-encoder chunk, recomputed in the backward (prompted_clip/text_chunks.py); 0 = all at once
    cfg.MODEL.TEXT_CHUNK = 128
    # CUDA runs repeatable bit for bit, slower (trainers/run/determinism.py); CPU runs are repeatable without it
    cfg.DETERMINISTIC = False
    # True: checkpoints and Datum caches that pickle more than they should are loaded in full, which may run code
    # from them; each such file is named in results.json (datasets/pickle_safety.py). Only for files you trust
    cfg.TRUST_PICKLED_FILES = False
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


# ---- dotted keys (``TRAINER.DPC.TOPK``; "" is the config itself) on a config or on a plain mapping -----------

def _parts(dotted):
    return dotted.split(".") if dotted else []


def get_key(cfg, dotted):
    node = cfg
    for part in _parts(dotted):
        node = node[part]
    return node


def has_key(cfg, dotted):
    node = cfg
    for part in _parts(dotted):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def set_key(cfg, dotted, value):
    parent, _, leaf = dotted.rpartition(".")
    setattr(get_key(cfg, parent), leaf, value)


# ---- config files ---------------------------------------------------------------------------------------

BASE_KEY = "_BASE_"  # an alias file names the config it extends (a path relative to the alias file)


def config_file_chain(path, chain=()):
    """The yaml mappings that ``path`` stands for, its ``_BASE_`` chain first, each as ``(path, mapping)``.
    A file with a top-level ``_BASE_: <path>`` (relative to the file) is an alias: the named config comes
    first, then the file's own keys (``configs/trainers/SPLE/`` holds such aliases for the reference code's
    config paths)."""
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
    if base is None:
        return [(path, content)]
    if not isinstance(base, str) or not base:
        raise ConfigError(f"{path}: {BASE_KEY} must be the path of a config file, got {base!r}")
    return config_file_chain(os.path.join(os.path.dirname(path), base), (*chain, os.path.abspath(path))) + [
        (path, content)]


def merge_config_file(cfg, path):
    """Merge a yaml file (and its ``_BASE_`` chain, first) into ``cfg``."""
    for source, content in config_file_chain(path):
        try:
            cfg.merge_from_other_cfg(CN(_with_config_types(cfg, content)))
        except (KeyError, AssertionError, ValueError, TypeError) as err:
            raise ConfigError(f"{source}: {_yacs_message(err)}") from None


# ---- values ---------------------------------------------------------------------------------------------

def _yacs_message(err):
    text = err.args[0] if err.args else str(err)
    return f"{text} (a key this project and its toolbox do not define)" if "Non-existent" in str(text) else text


def _typed(cfg, key, value):
    """``value`` for ``key``: a whole number given for a float key is that float (``HOST_LOSS_WEIGHT 1``,
    ``OPTIM.LR 1``); a value of another type than the key's default is one line naming the key, the value and
    the type wanted (yacs' own rule: the same type, None on either side, or a list for a tuple)."""
    if not has_key(cfg, key):
        return value  # yacs names the unknown key
    default = get_key(cfg, key)
    if type(default) is float and type(value) is int:
        return float(value)
    kinds = {type(default), type(value)}
    if len(kinds) == 1 or type(None) in kinds or kinds == {list, tuple} or isinstance(default, dict):
        return value
    wanted = type(default).__name__
    raise ConfigError(f"{key} {value!r}: this key takes {'an' if wanted[0] in 'aeiou' else 'a'} {wanted} "
                      f"(default {default!r}), not a {type(value).__name__}")


def _with_config_types(cfg, content, prefix=""):
    """A yaml mapping with each value decoded as yacs decodes it and checked by ``_typed``."""
    typed = {}
    for name, value in content.items():
        key = f"{prefix}{name}"
        if isinstance(value, dict):
            typed[name] = _with_config_types(cfg, value, key + ".")
        else:
            typed[name] = _typed(cfg, key, CN._decode_cfg_value(value))
    return typed


def _typed_opts(cfg, opts):
    """KEY VALUE pairs (strings) with each value checked by ``_typed``; a converted value is written out."""
    typed = []
    for key, text in zip(opts[0::2], opts[1::2]):
        value = CN._decode_cfg_value(text)
        converted = _typed(cfg, key, value)
        typed += [key, repr(converted) if converted is not value else text]
    return typed


def _merge_options(cfg, opts):
    try:
        cfg.merge_from_list(_typed_opts(cfg, opts))
    except (KeyError, AssertionError, ValueError, TypeError) as err:
        if isinstance(err, ConfigError):
            raise ConfigError(f"Command-line option {err}") from None
        raise ConfigError(f"Command-line option: {_yacs_message(err)}") from None


def build_cfg(config_files=(), opts=(), flags=None, trainer=None, notes=None):
    """The run's config: Dassl's defaults, the project's keys, the yaml files in order, the command-line flags
    (``flags``: dotted key -> value, set as they are), then the KEY VALUE ``opts``; then the rounding that
    ``MODEL.REFERENCE_PARITY`` implies (``trainers/hosts/prompt_rounding.py``) and the trainer's own resolution
    (``ClipTrainer.resolve_config``: aliases, defaults that depend on other keys), so that what is printed and
    recorded is what runs. Returned frozen; lines for the run's log are appended to ``notes`` (a list) if given.

    ``train.py``, the pipeline, DPC and the tests all build configs here.
    """
    from trainers.engine import TRAINER_REGISTRY, get_cfg_default
    from trainers.hosts.prompt_rounding import imply_prompt_rounding, rounding_notes

    cfg = extend_cfg(get_cfg_default())
    for path in config_files:
        if path:
            merge_config_file(cfg, path)
    for key, value in (flags or {}).items():
        set_key(cfg, key, value)
    opts = [str(value) for value in opts]
    if len(opts) % 2:
        raise ConfigError(f"Options must come in KEY VALUE pairs; got an odd list: {opts}")
    _merge_options(cfg, opts)
    name = trainer or cfg.TRAINER.NAME
    trainer_class = TRAINER_REGISTRY.get(name) if name in TRAINER_REGISTRY.registered_names() else None
    # A host's per-dataset settings (trainers/hosts/dataset_settings.py) come before the options, which win.
    settings = getattr(trainer_class, "dataset_opts", lambda cfg: [])(cfg)
    if settings:
        _merge_options(cfg, settings)
        _merge_options(cfg, opts)
    rounding = imply_prompt_rounding(cfg, config_files, flags, opts)
    resolve = getattr(trainer_class, "resolve_config", None)
    if resolve is not None:
        resolve(cfg)
    if notes is not None and hasattr(trainer_class, "identity_nodes"):
        notes.extend(rounding_notes(cfg, rounding, trainer_class.identity_nodes(cfg)))
    cfg.freeze()
    return cfg

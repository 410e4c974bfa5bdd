"""The project's config keys on top of Dassl's defaults (the anchors' ``extend_cfg``).

Each trainer module adds its own node with ``@config_extension``; ``extend_cfg`` applies them all, and
``build_cfg`` builds a run's whole config.
"""
import difflib

from yacs.config import CfgNode as CN

from trainers.run.config_keys import ConfigError, config_file_chain, get_key, has_key, set_key

_EXTENSIONS = []
_RESOLUTIONS = []


def config_extension(fn):
    _EXTENSIONS.append(fn)
    return fn


def config_resolution(fn):
    """Register ``fn(cfg, given)``, a rule of a layer above that settles keys of every run from others (the prompt
    rounding ``MODEL.REFERENCE_PARITY`` implies, ``trainers/host_api/prompt_rounding.py``): ``build_cfg`` applies
    it after the options, before the trainer's own resolution. ``given`` (a set) holds the keys the run set so far
    (``written_keys``, then what earlier resolutions set); ``fn`` adds the keys it sets. It returns
    ``notes(cfg, trainer_nodes)``: the lines for the run's log, from the final config, about the ``cfg.TRAINER``
    nodes the run's trainer reads."""
    _RESOLUTIONS.append(fn)
    return fn


def extend_cfg(cfg):
    cfg.DATASET.SUBSAMPLE_CLASSES = "all"  # all, base or new (base-to-new protocol)
    cfg.DATASET.FOLDER = ""  # ImageFolder: the folder under DATASET.ROOT
    # A benchmark's published split file is read, never drawn or written (docs/DATASETS.md). True: use a split
    # drawn here instead, kept beside it in split_generated_<NAME>.json (the record says so)
    cfg.DATASET.GENERATE_SPLIT = False
    # True: leave out the images a split lists that are missing or cannot be read (results.json counts them)
    cfg.DATASET.SKIP_UNREADABLE = False
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


def merge_config_file(cfg, path):
    """Merge a yaml file (and its ``_BASE_`` chain, first) into ``cfg``."""
    for source, content in config_file_chain(path):
        try:
            cfg.merge_from_other_cfg(CN(_with_config_types(cfg, content)))
        except (KeyError, AssertionError, ValueError, TypeError) as err:
            raise ConfigError(f"{source}: {_yacs_message(err, cfg)}") from None


# ---- values ---------------------------------------------------------------------------------------------

def _yacs_message(err, cfg=None):
    text = err.args[0] if err.args else str(err)
    if "Non-existent" not in str(text):
        return text
    hint = _closest_key_hint(cfg, str(text))
    return f"{text} (a key this project and its toolbox do not define)" + (f".{hint}" if hint else "")


def _all_keys(cfg, prefix=""):
    for name, value in cfg.items():
        if isinstance(value, CN):
            yield from _all_keys(value, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}"


def _closest_key_hint(cfg, text):
    """' Did you mean "KEY"?' for yacs' "Non-existent config key: <key>", the closest key of ``cfg``; else ''."""
    unknown = text.rsplit(":", 1)[-1].strip()
    if cfg is None or not unknown:
        return ""
    by_upper = {key.upper(): key for key in _all_keys(cfg)}  # "trainer.coop.n_ctx" means TRAINER.COOP.N_CTX
    close = difflib.get_close_matches(unknown.upper(), list(by_upper), n=1, cutoff=0.8)
    return f' Did you mean "{by_upper[close[0]]}"?' if close else ""


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


def typed_value(cfg, key, text):
    """The value ``text`` (as a command line gives it) sets ``key`` of ``cfg`` to."""
    return _typed(cfg, key, CN._decode_cfg_value(text))


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
        raise ConfigError(f"Command-line option: {_yacs_message(err, cfg)}") from None


def _dotted_keys(mapping, prefix=""):
    for name, value in mapping.items():
        yield f"{prefix}{name}"
        if isinstance(value, dict):
            yield from _dotted_keys(value, f"{prefix}{name}.")


def written_keys(config_files=(), flags=None, opts=()):
    """Every dotted key the run writes itself, whatever the value: in its yaml files (their ``_BASE_`` chains
    included), its command-line flags and its KEY VALUE options. Computed once, in ``build_cfg``."""
    written = {str(key) for key in list(opts)[::2]} | set(flags or {})
    for path in config_files:
        for _, content in config_file_chain(path) if path else ():
            written.update(_dotted_keys(content))
    return frozenset(written)


def build_cfg(config_files=(), opts=(), flags=None, trainer=None, notes=None):
    """The run's config: Dassl's defaults, the project's keys, the yaml files in order, the command-line flags
    (``flags``: dotted key -> value, set as they are), then the KEY VALUE ``opts``; then the registered resolutions
    (``config_resolution``: the rounding ``MODEL.REFERENCE_PARITY`` implies) and the trainer's own resolution
    (``ClipTrainer.resolve_config``: aliases, defaults that depend on other keys), so that what is printed and
    recorded is what runs. The keys the run sets (``written_keys``, and those a resolution sets) are computed once
    here and handed to both. Returned frozen; lines for the run's log are appended to ``notes`` (a list) if given.

    ``train.py``, the pipeline, DPC and the tests all build configs here.
    """
    from trainers.engine import TRAINER_REGISTRY, get_cfg_default  # imports torch: not when train.py --help

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
    # A host's per-dataset settings (trainers/host_api/dataset_settings.py) come before the options, which win.
    settings = getattr(trainer_class, "dataset_opts", lambda cfg: [])(cfg)
    if settings:
        _merge_options(cfg, settings)
        _merge_options(cfg, opts)
    given = set(written_keys(config_files, flags, opts))
    resolution_notes = [resolution(cfg, given) for resolution in _RESOLUTIONS]
    resolve = getattr(trainer_class, "resolve_config", None)
    if resolve is not None:
        resolve(cfg, frozenset(given))
    if notes is not None and hasattr(trainer_class, "identity_nodes"):
        for notes_of in resolution_notes:
            notes.extend(notes_of(cfg, trainer_class.identity_nodes(cfg)))
    cfg.freeze()
    return cfg

"""Finding config files by name or path, and reading what a run's config resolves to (its last epoch).

Names are looked up the CoOp way: a dataset ``caltech101`` is ``configs/datasets/caltech101.yaml`` and a
config ``vit_b16_ctxv1`` of trainer ``CoOp`` is ``configs/trainers/CoOp/vit_b16_ctxv1.yaml``. Anything that
ends in ``.yaml``/``.yml`` or contains a path separator is taken as a path instead.
"""
import os
from dataclasses import dataclass

from trainers.run.config_keys import ConfigError
from trainers.run.paths import REPO_DIR

DATASET_CONFIG_DIR = os.path.join("configs", "datasets")
TRAINER_CONFIG_DIR = os.path.join("configs", "trainers")


@dataclass(frozen=True)
class ConfigRef:
    path: str  # as written on the command line: relative to the repository root when inside it
    name: str  # the file stem, used in output directories

    @property
    def abspath(self):
        return self.path if os.path.isabs(self.path) else os.path.join(REPO_DIR, self.path)


def _looks_like_path(value):
    return value.endswith((".yaml", ".yml")) or os.sep in value or (os.altsep and os.altsep in value)


def _command_line_path(path):
    """train.py runs from the repository root: keep repository files relative, everything else absolute."""
    path = os.path.abspath(path)
    inside = os.path.relpath(path, REPO_DIR)
    return path if inside.startswith(os.pardir) else inside


def _available(folder):
    full = os.path.join(REPO_DIR, folder)
    if not os.path.isdir(full):
        return []
    return sorted(os.path.splitext(f)[0] for f in os.listdir(full) if f.endswith((".yaml", ".yml")))


def _resolve(value, folder, what):
    if _looks_like_path(value):
        # A path relative to the current directory first, then to the repository root.
        candidates = [value] if os.path.isabs(value) else [os.path.abspath(value), os.path.join(REPO_DIR, value)]
        for candidate in candidates:
            if os.path.isfile(candidate):
                return ConfigRef(_command_line_path(candidate), os.path.splitext(os.path.basename(candidate))[0])
        raise ConfigError(f"{what} file not found: {value}")
    path = os.path.join(REPO_DIR, folder, value + ".yaml")
    if not os.path.isfile(path):
        known = _available(folder)
        raise ConfigError(f"No {what} named {value!r}: {os.path.join(folder, value + '.yaml')} does not exist "
                          f"(available: {', '.join(known) or 'none'}); pass a name from {folder} or a file path")
    return ConfigRef(os.path.join(folder, value + ".yaml"), value)


def resolve_dataset_config(value):
    return _resolve(value, DATASET_CONFIG_DIR, "dataset config")


def resolve_trainer_config(value, trainer):
    return _resolve(value, os.path.join(TRAINER_CONFIG_DIR, trainer), f"{trainer} config")


def registered_trainers():
    import trainers  # noqa: F401  (registers every trainer and its config node)
    from trainers.engine import TRAINER_REGISTRY

    return set(TRAINER_REGISTRY.registered_names())


def planned_config(trainer, config_files, opts, flags=None, warn=print):
    """The config a run of ``trainer`` gets, built exactly as train.py builds it (so a wrong key fails here,
    before any run starts); None when ``trainer`` is not registered here: its own keys cannot be checked (said
    once per trainer), and what the pipeline needs is then read from the yaml files (``max_epoch``)."""
    if len(opts) % 2:
        raise ConfigError(f"Options must come in KEY VALUE pairs; got an odd list: {list(opts)}")
    if trainer not in registered_trainers():
        if trainer not in _WARNED:
            _WARNED.add(trainer)
            warn(f"Warning: trainer {trainer!r} is not registered here; its config keys are not checked and "
                 "OPTIM.MAX_EPOCH is read from the yaml files and options directly")
        return None
    from trainers.engine.config import build_cfg

    try:
        return build_cfg(config_files, opts, flags, trainer=trainer)
    except (KeyError, AssertionError, ValueError, TypeError) as err:
        raise ConfigError(f"Config of trainer {trainer} does not load ({err}); files: {list(config_files)}, "
                          f"options: {list(opts)}") from err


_WARNED = set()


def _plain_value(config_files, section, key, default):
    """``<section>.<key>`` as the yaml files (and their ``_BASE_`` chains) set it, the last file winning."""
    from trainers.run.config_keys import config_file_chain

    value = default
    for path in config_files:
        for _, data in config_file_chain(path):
            value = (data.get(section) or {}).get(key, value)
    return value


def max_epoch(cfg, config_files, opts):
    """The ``OPTIM.MAX_EPOCH`` a run ends at (the ``--load-epoch`` of the runs that evaluate its checkpoint), from
    its ``planned_config``, or from the yaml files and options alone when that is None."""
    if cfg is not None:
        return int(cfg.OPTIM.MAX_EPOCH)
    from trainers.engine import get_cfg_default

    epoch = _plain_value(config_files, "OPTIM", "MAX_EPOCH", get_cfg_default().OPTIM.MAX_EPOCH)
    for key, value in zip(opts[0::2], opts[1::2]):
        if key == "OPTIM.MAX_EPOCH":
            epoch = value
    return int(epoch)


def keeps_best_val(cfg, config_files):
    """Whether a run keeps its best validation epoch (``TEST.FINAL_MODEL best_val``, as PromptKD's configs do):
    the runs that evaluate or build on its checkpoint then read ``model-best.pth.tar``, not the last epoch."""
    final = cfg.TEST.FINAL_MODEL if cfg is not None else _plain_value(config_files, "TEST", "FINAL_MODEL",
                                                                      "last_step")
    return final == "best_val"


def resolve_max_epoch(trainer, config_files, opts, warn=print):
    return max_epoch(planned_config(trainer, config_files, opts, warn=warn), config_files, opts)


def selects_best_val(trainer, config_files, opts):
    return keeps_best_val(planned_config(trainer, config_files, opts), config_files)

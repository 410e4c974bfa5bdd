"""Variants of DPC's stage: the settings each DPC run of a plan adds to its config (a sweep's grid, the ablation's
rows), and which of them need a training of their own.

A variant is a dict ``{KEY: value as text}``; its runs live in the ``<cfg>@KEY=VALUE...`` folders of
``tools/output_folders.py``. Its *training* settings are the variant without the keys the DPC trainer declares
evaluation-only (``DPC.evaluation_only_keys``: ω_n always, ω_b in ``mixed`` mode) and without the values the DPC
config already has; variants with the same training settings share one training run, which lives in the folder of
those settings (so the plain DPC run of the base-to-new table is the training of an ω_n sweep), and every variant
whose folder differs from it evaluates that run (``--eval-only --model-dir``) into its own folder.
"""
import itertools

from tools.paper_experiments import ABLATION_ROWS, WEIGHT_SWEEPS
from trainers.engine.config import typed_value
from trainers.run.config_keys import ConfigError, get_key, has_key, set_key

ABLATION = "ablation"
WEIGHT_SWEEPS_NAME = "weight-sweeps"


def named_variants(name):
    """The paper's sets: the ablation's rows (host row aside: it is the host's own runs), or both weight sweeps."""
    if name == ABLATION:
        return [dict(settings) for _, settings in ABLATION_ROWS]
    if name == WEIGHT_SWEEPS_NAME:
        return [{key: value} for key, values, _ in WEIGHT_SWEEPS for value in values]
    raise ConfigError(f"Unknown variant set {name!r}; choose from {ABLATION}, {WEIGHT_SWEEPS_NAME}")


def parse_sweep(item):
    """``KEY=V1,V2,...`` -> (KEY, [V1, V2, ...])."""
    key, sep, values = item.partition("=")
    values = [v for v in values.split(",") if v]
    if not sep or not key or not values:
        raise ConfigError(f"--sweep takes KEY=V1,V2,... (e.g. TRAINER.DPC.WEIGHT_NEW=0,0.1,0.2); got {item!r}")
    if key.startswith("TRAINER.") and not key.startswith("TRAINER.DPC."):
        raise ConfigError(f"--sweep {key}: a sweep varies DPC's stage (its host runs are shared by every value); "
                          "a host key changes stage 1: run the pipeline once per value with --host-opts")
    return key, values


def plan_variants(names=(), sweeps=()):
    """Every named set's variants (in order), each crossed with the grid of the sweeps; [{}] (plain DPC) when
    neither is given. ``sweeps`` is a list of ``KEY=V1,V2`` items; a key given twice is an error."""
    grid_keys = [parse_sweep(item) for item in sweeps]
    keys = [key for key, _ in grid_keys]
    if len(set(keys)) != len(keys):
        raise ConfigError(f"--sweep names a key twice: {keys}; give each key once with all its values")
    grid = [dict(zip(keys, values)) for values in itertools.product(*(values for _, values in grid_keys))]
    named = [variant for name in names for variant in named_variants(name)] or [{}]
    return [{**variant, **point} for variant in named for point in grid]


def training_settings(cfg, settings, evaluation_only):
    """The settings that change what a run trains: those of ``settings`` outside ``evaluation_only`` whose value
    differs from ``cfg``'s (the plain DPC run's resolved config)."""
    training = {}
    for key, text in settings.items():
        if key in evaluation_only:
            continue
        if cfg is not None and has_key(cfg, key) and typed_value(cfg, key, text) == get_key(cfg, key):
            continue
        training[key] = text
    return training


def setting_opts(settings):
    return [str(v) for key in sorted(settings) for v in (key, settings[key])]


def with_settings(cfg, settings):
    """A copy of ``cfg`` with the variant's settings, typed as a command line's."""
    cfg = cfg.clone()
    cfg.defrost()
    for key, text in settings.items():
        set_key(cfg, key, typed_value(cfg, key, text))
    return cfg

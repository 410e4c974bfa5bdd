"""Where every run of a benchmark lives under the output root: the single source of truth for the pipeline
(which writes runs there) and the tables (which read them back).

    base2new:      <OUT>/base2new/{train_base,test_new}/<dataset>/shots_<K>/<Method>/<cfg>/seed<S>/
    cross-dataset  <OUT>/xd/train/<source>/shots_<K>/<Method>/<cfg>/seed<S>/   (ImageNet, all classes)
    and DG:        <OUT>/xd/test/<target>/shots_<K>/<Method>/<cfg>/seed<S>/     (eval-only on each target)
    few-shot:      <OUT>/few_shot/<dataset>/shots_<K>/<Method>/<cfg>/seed<S>/
    teachers:      <OUT>/base2new/teacher/..., <OUT>/xd/teacher/..., <OUT>/few_shot_teacher/...  (same levels below)

``<dataset>`` is the dataset config's file stem (``caltech101``), ``<cfg>`` the method config's file stem and
``<Method>`` the trainer name, ``DPC_<Host>`` for DPC over a host. A run with settings beyond its config file (one
value of a sweep, a row of the ablation) has them in its ``<cfg>`` level, one ``@KEY=VALUE`` each, keys sorted:
``vit_b16_ep20_batch4@TRAINER.DPC.WEIGHT_NEW=0.01`` (``variant_dir_name``, read back by
``parse_variant_dir_name``). Cross-dataset and domain generalisation share one training run per method and seed,
as the anchors' scripts do.
"""
import os

from trainers.run.record import RESULTS_FILE as RESULTS_FILE  # the one name of the completion marker

DPC_TRAINER = "DPC"
FEATURE_CACHE_DIR = ".feature_cache"  # <OUT>/.feature_cache: the runs' shared test-feature cache

BASE2NEW = "base2new"
CROSS_DATASET = "cross-dataset"
DOMAIN_GENERALIZATION = "dg"
FEW_SHOT = "few-shot"
MODES = (BASE2NEW, CROSS_DATASET, DOMAIN_GENERALIZATION, FEW_SHOT)

# Each benchmark's datasets (the pipeline trains on them, the tables order their rows by them).
# The 11 base-to-new datasets, in the order of the paper's table (dataset config file stems).
BASE2NEW_DATASETS = (
    "imagenet", "caltech101", "oxford_pets", "stanford_cars", "oxford_flowers", "food101",
    "fgvc_aircraft", "sun397", "dtd", "eurosat", "ucf101",
)
XD_SOURCE = "imagenet"
CROSS_DATASET_TARGETS = tuple(d for d in BASE2NEW_DATASETS if d != XD_SOURCE)
DG_TARGETS = ("imagenetv2", "imagenet_sketch", "imagenet_a", "imagenet_r")

# (mode, phase) -> the folders between <OUT> and <dataset>
_PHASE_DIRS = {
    (BASE2NEW, "train"): ("base2new", "train_base"),
    (BASE2NEW, "test"): ("base2new", "test_new"),
    (CROSS_DATASET, "train"): ("xd", "train"),
    (CROSS_DATASET, "test"): ("xd", "test"),
    (DOMAIN_GENERALIZATION, "train"): ("xd", "train"),
    (DOMAIN_GENERALIZATION, "test"): ("xd", "test"),
    (FEW_SHOT, "train"): ("few_shot",),
    # the runs a host's model needs before it trains (PromptKD's teacher); the tables do not read them
    (BASE2NEW, "teacher"): ("base2new", "teacher"),
    (CROSS_DATASET, "teacher"): ("xd", "teacher"),
    (DOMAIN_GENERALIZATION, "teacher"): ("xd", "teacher"),
    (FEW_SHOT, "teacher"): ("few_shot_teacher",),
}


def method_dir_name(host, dpc=False):
    """``CoOp`` for the host itself, ``DPC_CoOp`` for DPC over it."""
    return f"{DPC_TRAINER}_{host}" if dpc else host


def split_method_dir_name(name):
    """``DPC_CoOp`` -> (``CoOp``, True); ``CoOp`` -> (``CoOp``, False)."""
    prefix = f"{DPC_TRAINER}_"
    return (name[len(prefix):], True) if name.startswith(prefix) else (name, False)


VARIANT_SEPARATOR = "@"


def variant_dir_name(cfg_name, settings):
    """The ``<cfg>`` level of a run: ``cfg_name`` alone, then ``@KEY=VALUE`` per setting, keys sorted, values as
    given (strings), so one setting names one folder whatever order a command line gave the keys in."""
    for key, value in settings.items():
        text = f"{key}={value}"
        if os.sep in text or VARIANT_SEPARATOR in text or not str(value):
            raise ValueError(f"{key}={value!r} cannot name a folder: a value needs no {os.sep!r} or "
                             f"{VARIANT_SEPARATOR!r} and is not empty")
    return "".join([cfg_name] + [f"{VARIANT_SEPARATOR}{key}={settings[key]}" for key in sorted(settings)])


def parse_variant_dir_name(name):
    """``vit@A.B=1@C.D=x`` -> (``vit``, {``A.B``: ``1``, ``C.D``: ``x``}); a plain config stem -> (stem, {})."""
    cfg_name, *pairs = name.split(VARIANT_SEPARATOR)
    return cfg_name, dict(pair.split("=", 1) for pair in pairs)


def phase_root(out, mode, phase):
    if (mode, phase) not in _PHASE_DIRS:
        raise ValueError(f"mode {mode!r} has no {phase!r} phase")
    return os.path.join(out, *_PHASE_DIRS[(mode, phase)])


def run_dir(out, mode, phase, dataset, shots, method, cfg_name, seed):
    return os.path.join(phase_root(out, mode, phase), dataset, f"shots_{shots}", method, cfg_name, f"seed{seed}")


def parse_run_dir(path, root):
    """The (dataset, shots, method, cfg, seed) of a run directory below ``root`` (a phase root), or None."""
    parts = os.path.relpath(path, root).split(os.sep)
    if len(parts) != 5 or not parts[1].startswith("shots_") or not parts[4].startswith("seed"):
        return None
    try:
        shots, seed = int(parts[1][len("shots_"):]), int(parts[4][len("seed"):])
    except ValueError:
        return None
    return {"dataset": parts[0], "shots": shots, "method": parts[2], "cfg": parts[3], "seed": seed}


def feature_cache_opts(out):
    """The runs of one output root share a test-feature cache (``trainers/evaluation/feature_cache.py``):
    zero-shot CLIP, CoOp, KgCoOp, CoCoOp and DPC over them then encode each test image once."""
    return ["TEST.FEATURE_CACHE", os.path.join(out, FEATURE_CACHE_DIR)]

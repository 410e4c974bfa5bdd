"""The paths a run reads, checked as soon as its config is built: before the config is printed and before a
dataset, a model or a log is built, so that a typo costs seconds and one line, not a config dump and a CLIP load.

Only what cannot be right is refused: a path that does not exist. A CLIP model name (``ViT-B/16``) whose file is
not in the cache is fine here: the download may work (trainers/prompted_clip/loading.py says when it does not).
The trainer's name and the config files are checked earlier still, before torch loads (``train.py``).
"""
import os

from clip.clip import _MODELS


class MissingInputError(FileNotFoundError):
    """One or more paths of the command line or config that do not exist."""


def _missing(path, want_dir):
    expanded = os.path.expanduser(path)
    return not (os.path.isdir(expanded) if want_dir else os.path.exists(expanded))


def input_problems(args, cfg):
    """One line per path of the run that does not exist (the flag or key named first), in the command's order."""
    problems = []
    if cfg.DATASET.ROOT and _missing(cfg.DATASET.ROOT, want_dir=True):
        problems.append(f"--root / DATASET.ROOT: no such folder: {cfg.DATASET.ROOT}")
    if args.eval_only and args.model_dir and _missing(args.model_dir, want_dir=True):
        problems.append(f"--model-dir: no such folder: {args.model_dir}")
    backbone_dir = cfg.TRAINER.get("DPC", {}).get("BACKBONE_DIR", "")
    if backbone_dir and _missing(backbone_dir, want_dir=False):
        problems.append(f"TRAINER.DPC.BACKBONE_DIR: no such run folder or checkpoint: {backbone_dir} (the host's "
                        "stage-1 output directory)")
    weights = cfg.MODEL.BACKBONE.NAME
    if weights and weights not in _MODELS and _missing(weights, want_dir=False):
        problems.append(f"MODEL.BACKBONE.NAME: {weights!r} is neither a file nor a CLIP model name "
                        f"({', '.join(_MODELS)})")
    return problems


def check_paths_exist(args, cfg):
    """Raise ``MissingInputError`` naming every path of the run that does not exist."""
    problems = input_problems(args, cfg)
    if problems:
        raise MissingInputError("; ".join(problems))

"""The training half of the toolbox seam: Dassl's engine when Dassl is importable, the built-in one otherwise.

Trainers import these names from here, never from ``dassl`` or ``trainers.engine.runtime`` directly.
"""
from datasets.toolbox import HAVE_DASSL, RUNTIME_NAME

if HAVE_DASSL:
    from dassl.config import get_cfg_default
    from dassl.engine import TRAINER_REGISTRY, TrainerX, build_trainer
    from dassl.evaluation import build_evaluator
    from dassl.metrics import compute_accuracy
    from dassl.optim import build_lr_scheduler, build_optimizer
    from dassl.utils import (
        load_checkpoint, load_pretrained_weights, mkdir_if_missing, save_checkpoint, set_random_seed, setup_logger,
    )
else:
    from .runtime import (
        TRAINER_REGISTRY, TrainerX, build_evaluator, build_lr_scheduler, build_optimizer, build_trainer,
        compute_accuracy, get_cfg_default, load_checkpoint, load_pretrained_weights, mkdir_if_missing,
        save_checkpoint, set_random_seed, setup_logger,
    )

__all__ = [
    "HAVE_DASSL", "RUNTIME_NAME", "TRAINER_REGISTRY", "TrainerX", "build_evaluator", "build_lr_scheduler",
    "build_optimizer", "build_trainer", "compute_accuracy", "get_cfg_default", "load_checkpoint",
    "load_pretrained_weights", "mkdir_if_missing", "save_checkpoint", "set_random_seed", "setup_logger",
]

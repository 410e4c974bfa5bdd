"""The training half of the toolbox seam: Dassl's engine when Dassl is importable, the built-in one otherwise.

Trainers import these names from here, never from ``dassl`` or ``trainers.engine.runtime`` directly. What the
project owns itself under both runtimes (checkpoint files, resume, optimiser and LR schedule, the log tee, the
batch contract) lives above the seam; docs/DEVELOPERS.md lists both sides.
"""
from datasets.toolbox import HAVE_DASSL, RUNTIME_NAME

if HAVE_DASSL:
    from dassl.config import get_cfg_default
    from dassl.engine import TRAINER_REGISTRY, TrainerX, build_trainer
    from dassl.evaluation import build_evaluator
    from dassl.metrics import compute_accuracy
    from dassl.utils import AverageMeter, MetricMeter, set_random_seed
else:
    from trainers.engine.runtime import (
        TRAINER_REGISTRY,
        AverageMeter,
        MetricMeter,
        TrainerX,
        build_evaluator,
        build_trainer,
        compute_accuracy,
        get_cfg_default,
        set_random_seed,
    )

__all__ = [
    "HAVE_DASSL", "RUNTIME_NAME", "TRAINER_REGISTRY", "AverageMeter", "MetricMeter", "TrainerX", "build_evaluator",
    "build_trainer", "compute_accuracy", "get_cfg_default", "set_random_seed",
]

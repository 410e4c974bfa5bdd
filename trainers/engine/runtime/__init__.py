"""The built-in training half of the toolbox seam: a small, faithful re-implementation of the Dassl API
subset this project takes from the seam (docs/DEVELOPERS.md lists it)."""
from trainers.engine.runtime.config import get_cfg_default
from trainers.engine.runtime.evaluator import build_evaluator
from trainers.engine.runtime.trainer import TRAINER_REGISTRY, SimpleTrainer, TrainerX, build_trainer
from trainers.engine.runtime.utils import AverageMeter, MetricMeter, compute_accuracy, set_random_seed

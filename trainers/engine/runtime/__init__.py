"""The built-in training half of the toolbox seam: a small, faithful re-implementation of the Dassl API
subset this project uses (see DESIGN §3 and the README's developer section)."""
from .checkpoint import load_checkpoint, load_pretrained_weights, mkdir_if_missing, save_checkpoint
from .config import get_cfg_default
from .evaluator import build_evaluator
from .logger import setup_logger
from .optim import build_lr_scheduler, build_optimizer
from .trainer import TRAINER_REGISTRY, SimpleTrainer, TrainerX, build_trainer
from .utils import compute_accuracy, set_random_seed

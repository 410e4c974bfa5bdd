"""Trainers: the training half of the toolbox seam (``engine``), CLIP prompting (``prompted_clip``) and the
registered trainers. Importing this package registers every trainer and its config node."""
from . import cocoop, coop, dpc, ivlp, kgcoop, maple, promptsrc, zsclip  # noqa: F401  (registration)
from .config import extend_cfg
from .engine import TRAINER_REGISTRY

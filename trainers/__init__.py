"""Trainers, one folder a concern: ``engine`` (the toolbox seam and ``ClipTrainer``), ``run`` (what one
``train.py`` run does and leaves on disk), ``prompted_clip`` (CLIP with prompts), ``hosts`` (the host interface
and one module per prompt learner), ``evaluation`` (test scoring, feature cache) and ``dpc``. Importing this
package registers every trainer and its config node."""
from trainers import dpc, hosts
from trainers.engine import TRAINER_REGISTRY
from trainers.engine.config import extend_cfg

hosts.register_all()

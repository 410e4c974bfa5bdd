"""Trainers, one folder a floor (docs/DEVELOPERS.md, tests/test_floors.py), bottom to top: ``run`` (run primitives
and torch-free config keys), ``prompted_clip`` (CLIP with prompts) and ``evaluation`` (test scoring, feature cache),
``engine`` (the toolbox seam, ``ClipTrainer``, ``build_cfg``), ``host_api`` (the host contract) and ``launch``
(what ``train.py`` does), ``hosts`` (one module per prompt learner) and ``dpc``. Importing this package registers
every trainer, its config node and the prompt rounding ``build_cfg`` applies."""
from trainers import dpc, hosts
from trainers.engine import TRAINER_REGISTRY
from trainers.engine.config import extend_cfg
from trainers.host_api import prompt_rounding  # registers its resolution with build_cfg

hosts.register_all()

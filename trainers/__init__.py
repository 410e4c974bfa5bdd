"""Trainers, one folder a floor (docs/DEVELOPERS.md, tests/test_floors.py), bottom to top: ``run`` (run primitives
and torch-free config keys), ``prompted_clip`` (CLIP with prompts) and ``evaluation`` (test scoring, feature cache),
``engine`` (the toolbox seam, ``ClipTrainer``, ``build_cfg``), ``host_api`` (the host contract) and ``launch``
(what ``train.py`` does), ``hosts`` (one module per prompt learner) and ``dpc``, then ``inference`` (a finished run
put to use: ``load_run``). Importing this package registers every trainer, its config node and the prompt rounding
``build_cfg`` applies."""
from trainers import dpc, hosts
from trainers.engine import TRAINER_REGISTRY
from trainers.engine.config import extend_cfg
from trainers.host_api import prompt_rounding  # registers its resolution with build_cfg

hosts.register_all()


def __getattr__(name):
    """``from trainers import load_run``: the API to use a finished run (``trainers/inference/``), imported when
    first asked for."""
    if name == "load_run":
        from trainers.inference import load_run

        return load_run
    raise AttributeError(f"module 'trainers' has no attribute {name!r}")

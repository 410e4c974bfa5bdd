"""Trainers, one folder a concern: ``engine`` (the toolbox seam and ``ClipTrainer``), ``run`` (what one
``train.py`` run does and leaves on disk), ``prompted_clip`` (CLIP with prompts), ``hosts`` (the host interface
and one module per prompt learner), ``evaluation`` (test scoring, feature cache), ``dpc``, and ``inference``
(a finished run put to use: ``load_run``). Importing this package registers every trainer and its config node."""
from trainers import dpc, hosts
from trainers.engine import TRAINER_REGISTRY
from trainers.engine.config import extend_cfg

hosts.register_all()


def __getattr__(name):
    """``from trainers import load_run``: the API to use a finished run (``trainers/inference/``), imported when
    first asked for."""
    if name == "load_run":
        from trainers.inference import load_run

        return load_run
    raise AttributeError(f"module 'trainers' has no attribute {name!r}")

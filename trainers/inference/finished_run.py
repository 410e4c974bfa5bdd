"""What a finished run is made of, read back from its folder alone: its record, its config and its checkpoint.

A run is finished when its ``results.json`` says so (``trainers/run/record.py``). The record holds the run's whole
resolved config -- for a DPC run, with the host as its stage-1 checkpoint recorded it (``trainers/dpc/stage1.py``)
-- so the host is rebuilt as the run built it. Zero-shot CLIP has no checkpoint: its record is enough.
"""
import os
from dataclasses import dataclass
from typing import Any, Optional

import torch

from trainers.dpc.trainer import DPC
from trainers.engine import TRAINER_REGISTRY, get_cfg_default
from trainers.engine.clip_trainer import ClipTrainer, backbone_key
from trainers.engine.config import extend_cfg
from trainers.host_api.host_trainer import host_model_class, is_host_trainer
from trainers.hosts.zsclip import ZeroshotCLIP
from trainers.run.checkpoints import load_checkpoint
from trainers.run.config_keys import ConfigError, get_key, has_key
from trainers.run.record import load_record


class RunNotUsable(ValueError):
    """A folder that holds no finished training run, or a run that cannot be used as asked."""


@dataclass
class FinishedRun:
    model_dir: str
    record: dict  # results.json
    cfg: Any  # the run's config (frozen), its backbone where this process finds it
    trainer: str  # the trainer that ran (DPC, a host, ZeroshotCLIP)
    host: Optional[str]  # the host trainer whose model computes the logits (None: zero-shot CLIP)
    checkpoint_path: Optional[str] = None
    checkpoint: Optional[dict] = None  # None: zero-shot CLIP, or the prompts as initialised (epoch 0)

    @property
    def is_dpc(self):
        return self.trainer_class is not None and issubclass(self.trainer_class, DPC)

    @property
    def trainer_class(self):
        return TRAINER_REGISTRY.get(self.trainer) if self.trainer in TRAINER_REGISTRY.registered_names() else None

    @property
    def classnames(self):
        """The classes the run was trained (or evaluated) on, in label order."""
        names = self.record.get("classnames")
        if not names:
            raise RunNotUsable(f"{self.model_dir}/results.json records no class names (a run of an older version): "
                               "give the class names (--classnames)")
        return list(names)

    @property
    def epoch(self):
        return None if self.checkpoint is None else self.checkpoint.get("epoch")


def _recorded_config(record, model_dir):
    """The run's config: this version's defaults with every recorded key this version still has."""
    cfg = extend_cfg(get_cfg_default())
    recorded = record.get("config")
    if not isinstance(recorded, dict):
        raise RunNotUsable(f"{model_dir}/results.json holds no config (a run of an older version): retrain it")

    def merge(prefix, mapping):
        for name, value in mapping.items():
            key = f"{prefix}{name}"
            if not has_key(cfg, key):
                continue  # a key this version no longer has
            if isinstance(value, dict) and isinstance(get_key(cfg, key), dict):
                merge(key + ".", value)
            else:
                default = get_key(cfg, key)
                value = tuple(value) if isinstance(default, tuple) and isinstance(value, list) else value
                value = float(value) if type(default) is float and type(value) is int else value
                parent, _, leaf = key.rpartition(".")
                (get_key(cfg, parent) if parent else cfg)[leaf] = value

    merge("", recorded)
    return cfg


def _use_backbone(cfg, backbone, model_dir):
    """Read the run's CLIP weights from ``backbone`` when given: the same weights (file name or model name), else
    one line naming both."""
    recorded = cfg.MODEL.BACKBONE.NAME
    if backbone and backbone_key(backbone) != backbone_key(recorded):
        raise ConfigError(f"CLIP weights {backbone} are not the backbone {model_dir} was trained on ({recorded}): "
                          f"give {recorded}, or a copy of that file")
    if backbone:
        cfg.MODEL.BACKBONE.NAME = backbone
    elif recorded.endswith((".pt", ".pth")) and not os.path.isfile(os.path.expanduser(recorded)):
        raise FileNotFoundError(f"The CLIP weights {model_dir} was trained on, {recorded}, are not there (a path "
                                "relative to where it ran?): give their place (--backbone)")


PROMPTS_FORMAT = "dpc-prompts/v1"
CHECKPOINT_PARTS = ("state_dict", "epoch", "run", "host", "dpc")  # what rebuilding needs (no optimiser, no RNG)


def exported_prompts(run):
    """A finished run in one file (``tools/export.py``): its record and the parts of its checkpoint that rebuild
    it; ``read_finished_run(<file>)`` reads it back."""
    checkpoint = {key: run.checkpoint[key] for key in CHECKPOINT_PARTS if key in (run.checkpoint or {})}
    return {"format": PROMPTS_FORMAT, "record": run.record, "checkpoint_path": run.checkpoint_path,
            "checkpoint": checkpoint or None}


def _read_exported(path):
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - whatever the unpickler meets, the file is not an export
        raise RunNotUsable(f"{path} is neither a run folder nor a file tools.export wrote ({err})") from None
    if not isinstance(content, dict) or content.get("format") != PROMPTS_FORMAT:
        raise RunNotUsable(f"{path} is not a prompts file of tools.export ({PROMPTS_FORMAT}); a standalone "
                           "classifier is used with plain clip (README)")
    return content


def read_finished_run(model_dir, epoch=None, backbone=None):
    """The finished run in ``model_dir`` with its checkpoint of ``epoch`` (default: the best, else the latest;
    0: the prompts as the run initialised them, before any step); or the run a ``tools.export`` prompts file
    holds."""
    if os.path.isfile(model_dir):
        content = _read_exported(model_dir)
        cfg = _recorded_config(content["record"], model_dir)
        _use_backbone(cfg, backbone, model_dir)
        cfg.freeze()
        run = content["record"]["trainer"]
        host = cfg.TRAINER.DPC.HOST if issubclass(TRAINER_REGISTRY.get(run), DPC) else run
        return FinishedRun(os.path.abspath(model_dir), content["record"], cfg, run, host,
                           content["checkpoint_path"], content["checkpoint"])
    record, problem = load_record(model_dir)
    if record is None:
        raise RunNotUsable(f"--model-dir {model_dir} is not a finished run ({problem}): point it at a run that "
                           "finished (its results.json is written after the final test)")
    trainer = record["trainer"]
    identity = record.get("identity") or {}
    trainer_class = TRAINER_REGISTRY.get(trainer) if trainer in TRAINER_REGISTRY.registered_names() else None
    if trainer_class is None:
        raise RunNotUsable(f"{model_dir} was run by {trainer!r}, a trainer this version does not have")
    if identity.get("eval_only") and trainer_class is not ZeroshotCLIP:
        evaluated = (record.get("evaluated") or {}).get("model_dir")
        raise RunNotUsable(f"{model_dir} holds an evaluation, not a training run: use the run it evaluated"
                           + (f" ({evaluated})" if evaluated else ""))
    cfg = _recorded_config(record, model_dir)
    _use_backbone(cfg, backbone, model_dir)
    if trainer_class is ZeroshotCLIP:
        cfg.freeze()
        return FinishedRun(os.path.abspath(model_dir), record, cfg, trainer, None)
    if issubclass(trainer_class, DPC):
        name, host = trainer_class.registered_name, cfg.TRAINER.DPC.HOST
    elif is_host_trainer(trainer_class):
        name, host = trainer_class.model_class.checkpoint_name, trainer
    else:
        raise RunNotUsable(f"{model_dir} was run by {trainer}, which is neither a host, DPC nor zero-shot CLIP")
    if epoch == 0:
        if issubclass(trainer_class, DPC):
            raise RunNotUsable("--load-epoch 0 (the prompts before training) is for host runs; a DPC run starts from "
                               f"its stage-1 run ({cfg.TRAINER.DPC.BACKBONE_DIR}): load that one")
        cfg.freeze()
        return FinishedRun(os.path.abspath(model_dir), record, cfg, trainer, host)
    path = ClipTrainer.checkpoint_path(model_dir, name, epoch)
    checkpoint = load_checkpoint(path)
    host_model_class(host)  # a host this version has, or one line naming the registered ones
    cfg.freeze()
    return FinishedRun(os.path.abspath(model_dir), record, cfg, trainer, host, path, checkpoint)

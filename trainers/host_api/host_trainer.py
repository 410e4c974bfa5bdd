"""``HostTrainer``: how every host trains; a host trainer declares its ``model_class`` and nothing else.

The model is built by ``trainers.host_api.interface.build_host`` (as DPC builds it), and its prompt learner alone is
registered, optimised and checkpointed, under the model's ``checkpoint_name`` (the reference hands MaPLe's, IVLP's and
PromptSRC's optimiser every parameter, but frozen ones get no gradient, so the updates agree), and every checkpoint
records how the host was built. The step minimises the host's own loss; the LR schedule steps after each epoch's
last batch, as in Dassl.

What a host trainer defines: ``model_class``, and optionally ``paper_configs``, ``teacher_run`` with
``teacher_dir_key``, ``contract_opts`` (class attributes), and the hooks ``build_model`` (to build more than the
model, e.g. PromptSRC's GPA) and ``after_last_batch``.
"""
from __future__ import annotations

from typing import Any, ClassVar, Optional

import torch

from trainers.engine import TRAINER_REGISTRY, compute_accuracy
from trainers.engine.clip_trainer import ClipTrainer
from trainers.engine.optim import build_lr_scheduler, build_optimizer
from trainers.evaluation.scoring import FeatureScorer, host_scorer
from trainers.host_api.dataset_settings import dataset_opts as per_dataset_opts
from trainers.host_api.interface import HostModel, build_host
from trainers.host_api.settings import host_record


def strip_module_prefix(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in state_dict.items()}


class HostTrainer(ClipTrainer):
    model_class: ClassVar[Optional[type[HostModel]]] = None  # required: the host's HostModel subclass
    # The host's configs its paper used per benchmark, read by the pipeline (tools/pipeline/presets.py): "base2new",
    # and optionally "cross" (cross-dataset and DG), "few_shot", "per_dataset" ({dataset config: config}) and
    # "few_shot_per_dataset" (the same for few-shot).
    paper_configs: ClassVar[Optional[dict[str, Any]]] = None
    # Options a benchmark's runs of this host take, by pipeline mode ("base2new", "cross-dataset", "dg",
    # "few-shot"), host and DPC runs alike, as its reference's scripts pass them (MMRL's TASK).
    protocol_opts: ClassVar[dict[str, list[Any]]] = {}
    # A host whose model needs another trained model names that run: (host trainer, its config), and the key of its
    # own node that takes the run's directory (PromptKD's teacher). The pipeline trains it first.
    teacher_run: ClassVar[Optional[tuple[str, str]]] = None
    teacher_dir_key: ClassVar[Optional[str]] = None
    # Config options (KEY, VALUE, ...) under which a few steps on the contract tests' tiny random CLIP reliably
    # lower this host's loss (tests/test_host_contract.py); a host whose loss needs other settings states them here.
    contract_opts: ClassVar[tuple[Any, ...]] = ("OPTIM.LR", 0.01)

    # A host whose reference sets keys per dataset in code reads them from configs/trainers/<trainer>/
    # dataset_settings.yaml (trainers/host_api/dataset_settings.py); build_cfg applies them before the options.
    dataset_settings: ClassVar[bool] = False

    @property
    def config_node(self) -> str:
        return self.model_class.config_node

    @classmethod
    def dataset_opts(cls, cfg: Any) -> list[Any]:
        """KEY VALUE pairs of this host's per-dataset settings for the run's TASK and dataset (or none)."""
        if not cls.dataset_settings:
            return []
        return per_dataset_opts(cls.__name__, cls.model_class.config_node, cfg.get("TASK", ""), cfg.DATASET.NAME)

    @classmethod
    def identity_nodes(cls, cfg: Any) -> list[str]:
        return [cls.model_class.config_node]

    @property
    def registered_name(self) -> str:
        return self.model_class.checkpoint_name

    def build_model(self) -> None:
        """Build the host (as DPC builds it); register, optimise and checkpoint its prompt learner alone."""
        clip_model = self.load_clip()
        self.model = build_host(self.model_class, self.cfg, self.dm.dataset.classnames, clip_model).to(self.device)
        learner = self.model.prompt_learner
        self.optim = build_optimizer(learner, self.cfg.OPTIM)
        self.sched = build_lr_scheduler(self.optim, self.cfg.OPTIM)
        self.register_model(self.registered_name, learner, self.optim, self.sched)

    def forward_backward(self, batch: dict[str, Any]) -> dict[str, float]:
        """One step on the host's own loss; returns the numbers the training log prints."""
        images, labels = self.parse_batch_train(batch)
        with self.autocast():
            loss = self.model.loss(images, labels)
        self.backward_and_update(loss.total)
        summary = {"loss": loss.total.item(), "acc": compute_accuracy(loss.logits, labels)[0].item()}
        summary.update({f"loss_{name}": value.item() for name, value in loss.terms.items()})
        if (self.batch_idx + 1) == self.num_batches:
            self.update_lr()
            self.after_last_batch()
        return summary

    def test_scorer(self) -> FeatureScorer:
        return host_scorer(self.model, self.model.frozen_image_features)

    def after_last_batch(self) -> None:
        """Called after the optimiser and scheduler steps of each epoch's last batch (PromptSRC's GPA)."""

    @classmethod
    def adapt_checkpoint(cls, name: str, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return cls.model_class.adapt_state_dict(strip_module_prefix(state_dict))

    def checkpoint_extra(self, name: str) -> dict[str, Any]:
        """How the host was built, so that DPC's stage 2 rebuilds it so (``trainers/host_api/settings.py``)."""
        return {"host": host_record(self.cfg, type(self).__name__, self.model_class)}


def registered_hosts() -> list[str]:
    """The names of every registered host trainer."""
    return [name for name in TRAINER_REGISTRY.registered_names() if is_host_trainer(TRAINER_REGISTRY.get(name))]


def is_host_trainer(cls: Any) -> bool:
    return isinstance(cls, type) and issubclass(cls, HostTrainer) and cls.model_class is not None


def host_trainer_class(name: str) -> type[HostTrainer]:
    """The host trainer registered as ``name``."""
    cls = TRAINER_REGISTRY.get(name)
    if not is_host_trainer(cls):
        raise ValueError(f"{name!r} is not a host trainer (a HostTrainer with a model_class, "
                         f"trainers/host_api/host_trainer.py); registered hosts: {', '.join(registered_hosts())}")
    return cls


def host_model_class(name: str) -> type[HostModel]:
    """The model class of the host trainer registered as ``name``."""
    return host_trainer_class(name).model_class

"""The host interface: what a prompt learner offers so that DPC can wrap it without knowing which one it is.

A host model computes its logits in three steps, and every host goes through the same three:

    logits(images, class_idx) = head(encode_image(images), encode_text(class_idx, image_features))

Everything it learns (its *prompt set*) lives in one sub-module, ``prompt_learner``; the rest (the CLIP towers,
``logit_scale``) is frozen when the host is built. DPC clones the prompt set, swaps other values in with
``torch.func.functional_call`` and calls the three steps itself, so that it can reuse features that cannot change.
A host that wants other logits (a bias, an ensemble, a learned temperature) overrides ``head`` or an encoder,
never ``logits``: then DPC's logits are the host's, and ω_n = 0 reproduces the host exactly.
``docs/HOSTS.md`` describes each host and walks through writing a new one.

What a subclass must define: ``config_node`` and ``__init__(node, classnames, clip_model)`` setting
``self.prompt_learner``, ``encode_image`` and ``encode_text``. Everything else has a default it may override:
``head``, ``loss`` / ``loss_from_features``, ``from_config``, ``adapt_state_dict``, ``dpc_prompt_names``,
``negative_scores``, and the class-level declarations listed on ``HostModel``.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, ClassVar, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from trainers.prompted_clip import PromptedImageEncoder, PromptedTextEncoder
from trainers.run.config_keys import ConfigError

PROMPT_LEARNER = "prompt_learner"


@dataclass(frozen=True)
class HostLoss:
    """A host's training loss. ``terms`` must hold tensors (0-dim), never Python floats: the training step logs
    each as ``loss_<name>`` through ``.item()``."""

    total: torch.Tensor  # what the host's own training minimises (0-dim)
    logits: torch.Tensor  # (B, C), the logits the loss was computed from (the training log's accuracy)
    terms: dict[str, torch.Tensor] = field(default_factory=dict)  # named parts of ``total``, for the training log


class HostModel(nn.Module, metaclass=abc.ABCMeta):
    """A CLIP prompt learner, built from ``cfg.TRAINER.<config_node>`` by ``from_config``.

    Class-level declarations:
    - ``config_node``: its settings' node under ``cfg.TRAINER`` (``PREC`` among them);
    - ``checkpoint_name``: the folder its checkpoints live in inside a run directory (the reference's name, so
      that the reference's run directories load);
    - ``overridable_settings``: keys of its node that change how it computes or trains, not what its prompts are;
      a DPC stage 2 may override them (``trainers/host_api/settings.py``);
    - ``text_depends_on_image``: ``encode_text`` needs the image features and returns one set per image (CoCoOp);
    - ``image_encoder_prompted``: prompts enter the image tower (may be set per instance);
    - ``frozen_image_features``: ``encode_image`` is CLIP's own image encoder, untouched by any prompt, so a test
      image's features are the same in every run and the feature cache may keep them
      (``trainers/evaluation/feature_cache.py``);
    - ``reference_rounds_prompts_fp16``: its reference rounds every inserted prompt through fp16 in every
      precision, so ``MODEL.REFERENCE_PARITY`` implies its node's ``ROUND_PROMPTS_FP16``
      (``trainers/host_api/prompt_rounding.py``).
    """

    config_node: ClassVar[Optional[str]] = None  # required: e.g. "COOP" for cfg.TRAINER.COOP
    checkpoint_name: ClassVar[str] = PROMPT_LEARNER
    overridable_settings: ClassVar[tuple[str, ...]] = ("PREC",)
    text_depends_on_image: ClassVar[bool] = False
    image_encoder_prompted: bool = False
    frozen_image_features: ClassVar[bool] = False
    reference_rounds_prompts_fp16: ClassVar[bool] = False

    # Set by every host's ``__init__``: the module holding everything it learns.
    prompt_learner: nn.Module

    def __init__(self, clip_model: nn.Module) -> None:
        """Keep CLIP's prompted towers, ``logit_scale`` and dtype; a subclass then sets ``self.prompt_learner``."""
        super().__init__()
        self.image_encoder = PromptedImageEncoder(clip_model)
        self.text_encoder = PromptedTextEncoder(clip_model)
        self.logit_scale = clip_model.logit_scale
        self.dtype = clip_model.dtype

    @classmethod
    def from_config(cls, cfg: Any, classnames: Sequence[str], clip_model: nn.Module) -> HostModel:
        """The model for ``classnames``; hosts that need more than their own node (a dataset template) override."""
        return cls(getattr(cfg.TRAINER, cls.config_node), classnames, clip_model)

    @abc.abstractmethod
    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """Image features (B, E), not normalised."""

    @abc.abstractmethod
    def encode_text(self, class_idx: Optional[torch.Tensor] = None,
                    image_features: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Text features of all classes or of ``class_idx``, not normalised: (C, E), or (B, C, E) with one set per
        image when ``text_depends_on_image`` (``image_features`` are then what ``encode_image`` returned)."""

    def head(self, image_features: torch.Tensor, text_features: torch.Tensor) -> torch.Tensor:
        """Logits (B, C): CLIP's scaled cosine, ``(exp(logit_scale) * f_img) @ f_txt^T``, per image for (B, C, E)."""
        image_features = F.normalize(image_features, dim=-1)
        text_features = F.normalize(text_features, dim=-1)
        scaled = self.logit_scale.exp() * image_features
        if text_features.dim() == 3:
            return (scaled.unsqueeze(1) @ text_features.transpose(1, 2)).squeeze(1)
        return scaled @ text_features.t()

    def logits(self, images: torch.Tensor, class_idx: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The three steps; DPC relies on this composition, so hosts override its parts, not this."""
        image_features = self.encode_image(images)
        text_features = self.encode_text(class_idx, image_features if self.text_depends_on_image else None)
        return self.head(image_features, text_features)

    def forward(self, images: torch.Tensor, class_idx: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.logits(images, class_idx)

    def loss(self, images: torch.Tensor, labels: torch.Tensor) -> HostLoss:
        """The host's own training loss: ``loss_from_features`` on the images' and all classes' features."""
        image_features = self.encode_image(images)
        text_features = self.encode_text(None, image_features if self.text_depends_on_image else None)
        return self.loss_from_features(image_features, text_features, labels)

    def loss_from_features(self, image_features: torch.Tensor, text_features: torch.Tensor,
                           labels: torch.Tensor) -> HostLoss:
        """The loss from features already computed (all classes' text): cross-entropy unless the method says
        otherwise. DPC's ``HOST_LOSS_WEIGHT`` term calls it with its step's features, so that nothing is encoded
        twice; a host whose loss needs more than these features overrides ``loss`` instead."""
        logits = self.head(image_features, text_features)
        return HostLoss(F.cross_entropy(logits, labels), logits)

    @classmethod
    def adapt_state_dict(cls, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The prompt learner's state from a checkpoint: ours as it is; hosts map the reference's layouts here."""
        return state_dict

    @property
    def reference_parity(self) -> bool:
        """Whether the encoders compute as the reference implementations do, bit for bit (``MODEL.REFERENCE_PARITY``,
        ``trainers/prompted_clip/encoders.py``), instead of the faster way that differs from them only in rounding."""
        return self.text_encoder.reference_parity

    @reference_parity.setter
    def reference_parity(self, enabled: bool) -> None:
        self.text_encoder.reference_parity = self.image_encoder.reference_parity = bool(enabled)

    @property
    def text_chunk(self) -> int:
        """Prompts per text-encoder call (``MODEL.TEXT_CHUNK``; 0 = all at once), ``prompted_clip/text_chunks.py``."""
        return self.text_encoder.chunk_size

    @text_chunk.setter
    def text_chunk(self, size: int) -> None:
        for module in self.modules():  # every text tower the host holds (PromptKD's teacher's too)
            if isinstance(module, PromptedTextEncoder):
                module.chunk_size = int(size)

    def prompt_parameter_names(self) -> list[str]:
        """Names (relative to this model) of the learnable tensors: what the host's own training learns."""
        return [f"{PROMPT_LEARNER}.{name}" for name, p in self.prompt_learner.named_parameters() if p.requires_grad]

    def dpc_prompt_names(self) -> list[str]:
        """Names (relative to this model) of the tensors DPC clones into P and P' (its prompt set); by default what
        the host learns. A host may name more: frozen parameters outside ``prompt_learner`` (PromptKD: its
        teacher's text prompts; DPC then trains a clone of them, never the host's own) and floating-point buffers
        of ``prompt_learner`` that its forward updates (BatchNorm statistics), which DPC keeps per prompt."""
        return self.prompt_parameter_names()

    def negative_scores(self, images: torch.Tensor) -> Optional[torch.Tensor]:
        """Scores (B, C) over the current classes by which DPC ranks hard negatives, or None (the default): DPC
        then scores with the host under its frozen prompt P. Called under ``no_grad``."""
        return None


def check_host(model: nn.Module) -> None:
    """Raise one error naming everything that keeps ``model`` from being wrapped as a host."""
    problems = []
    if not isinstance(model, HostModel):
        problems.append("it is not a HostModel")
    learner = getattr(model, PROMPT_LEARNER, None)
    if not isinstance(learner, nn.Module):
        problems.append(f"it has no {PROMPT_LEARNER} module (the module holding every learnable tensor)")
    elif not any(p.requires_grad for p in learner.parameters()):
        problems.append(f"its {PROMPT_LEARNER} has no learnable tensor")
    if not isinstance(getattr(model, "logit_scale", None), torch.Tensor):
        problems.append("it has no logit_scale tensor")
    for method in ("logits", "forward"):
        if getattr(type(model), method, None) is not getattr(HostModel, method):
            problems.append(f"it overrides {method} (override head or an encoder instead, so that DPC computes "
                            "the host's logits)")
    if problems:
        raise TypeError(f"{type(model).__name__} does not implement the host interface "
                        "(trainers/host_api/interface.py): " + "; ".join(problems))


def text_chunk(cfg: Any) -> int:
    """``MODEL.TEXT_CHUNK``, checked; 0 under ``MODEL.REFERENCE_PARITY``, which keeps the reference's one call."""
    size = cfg.MODEL.TEXT_CHUNK
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ConfigError(f"MODEL.TEXT_CHUNK must be a whole number >= 0 (text prompts per chunk; 0 = all at once), "
                         f"got {size!r}")
    return 0 if cfg.MODEL.REFERENCE_PARITY else size


def build_host(model_class: type[HostModel], cfg: Any, classnames: Sequence[str], clip_model: nn.Module) -> HostModel:
    """The host as its own trainer and DPC both build it: frozen but for its prompt set, and checked."""
    print(f"Building {model_class.__name__} (settings: TRAINER.{model_class.config_node})")
    model = model_class.from_config(cfg, classnames, clip_model)
    model.reference_parity = cfg.MODEL.REFERENCE_PARITY
    model.text_chunk = text_chunk(cfg)
    for name, param in model.named_parameters():
        param.requires_grad_(name.startswith(PROMPT_LEARNER + "."))
    check_host(model)
    learned = sum(p.numel() for p in model.prompt_learner.parameters())
    print(f"Learnable: {PROMPT_LEARNER} ({learned:,} values); everything else is frozen")
    return model

"""The host interface: what a prompt-learning method exposes so that a wrapper (DPC) can drive it
without knowing which method it is.

A host trainer (CoOp, MaPLe, ...) is a registered ``ClipTrainer`` subclass that
- declares ``config_node`` (its node under ``cfg.TRAINER``, holding ``PREC``) and ``registered_name`` (the
  name its learnable module is registered and checkpointed under, e.g. ``prompt_learner``);
- builds its model with the classmethod ``build_host_model(cfg, classnames, clip_model)``, returning a
  ``HostModel``; its own ``build_model`` calls the same function, so a wrapper builds exactly the host.

A ``HostModel`` owns every learnable tensor in one sub-module (``prompt_module_name``); a wrapper swaps their
values with ``torch.func.functional_call`` using ``prompt_parameter_names()``.
"""
import torch.nn.functional as F
from torch import nn


class HostModel(nn.Module):
    prompt_module_name = "prompt_learner"
    # True when the text features depend on the image (CoCoOp): text features cannot then be cached.
    text_depends_on_image = False
    # True when prompts enter the image encoder (IVLP, MaPLe, PromptSRC): image features then depend on them.
    # A host may set it per instance (IVLP's language-only configuration has no vision prompts).
    image_encoder_prompted = False

    @property
    def prompt_module(self):
        return getattr(self, self.prompt_module_name)

    def prompt_parameter_names(self):
        """Names (relative to this model) of the learnable tensors: the prompt set S of DPC."""
        return [f"{self.prompt_module_name}.{name}" for name, p in self.prompt_module.named_parameters()
                if p.requires_grad]

    def encode_image(self, images):
        """Image features (B, E), not normalised."""
        raise NotImplementedError

    def encode_text(self, class_idx=None):
        """Text features (C, E) of all classes or of ``class_idx``, not normalised (text-independent hosts).

        Hosts with ``text_depends_on_image`` (CoCoOp) take the images' features as a keyword,
        ``encode_text(class_idx, image_features=encode_image(images))``, and return (B, C, E): one set of text
        features per image. A wrapper can stay generic by calling ``logits(images, class_idx)`` for them."""
        raise NotImplementedError

    def logits(self, images, class_idx=None):
        """Scaled cosine logits (B, C) of the images against all classes or ``class_idx``."""
        image_features = F.normalize(self.encode_image(images), dim=-1)
        text_features = F.normalize(self.encode_text(class_idx), dim=-1)
        return self.logit_scale.exp() * image_features @ text_features.t()

    def forward(self, images, class_idx=None):
        return self.logits(images, class_idx)

    def loss(self, images, labels):
        """The host's own training loss and its logits (cross-entropy unless the method says otherwise)."""
        output = self.logits(images)
        return F.cross_entropy(output, labels), output


def freeze_all_but(model, prefix):
    """Freeze every parameter whose name does not start with ``prefix`` (the frozen CLIP around the prompts)."""
    for name, param in model.named_parameters():
        param.requires_grad_(name.startswith(prefix))

"""CoCoOp, conditional context optimisation (Zhou et al., CVPR 2022).

A meta-net maps each normalised image feature to a bias that is added to every context token, so each image has
its own prompts and ``encode_text`` returns one set of text features per image: one text-encoder call per image,
the reference's structure, kept for parity. ``head`` multiplies all images at once; under ``MODEL.REFERENCE_PARITY``
one image at a time, as the reference. Checkpoint keys are the reference's (``ctx``, ``meta_net.linear{1,2}.*``).
"""
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from trainers.engine import TRAINER_REGISTRY
from trainers.engine.config import config_extension, new_node
from trainers.host_api.host_trainer import HostTrainer
from trainers.host_api.interface import HostModel
from trainers.hosts.coop import CoOpPromptLearner
from trainers.hosts.parts.reference_order import unit


@config_extension
def add_cocoop_config(cfg):
    cfg.TRAINER.COCOOP = new_node(N_CTX=16, CTX_INIT="", PREC="fp16")


class CoCoOpPromptLearner(CoOpPromptLearner):
    """CoOp's generic context (init rule included) plus the meta-net ``linear1`` (E -> E/16), ReLU,
    ``linear2`` (E/16 -> D), in the CLIP dtype."""

    def __init__(self, clip_model, classnames, n_ctx, ctx_init):
        super().__init__(clip_model, classnames, n_ctx, ctx_init)
        vis_dim = clip_model.visual.output_dim
        ctx_dim = self.ctx.shape[-1]
        self.meta_net = nn.Sequential(OrderedDict([
            ("linear1", nn.Linear(vis_dim, vis_dim // 16)),
            ("relu", nn.ReLU(inplace=True)),
            ("linear2", nn.Linear(vis_dim // 16, ctx_dim)),
        ])).to(device=self.ctx.device, dtype=clip_model.dtype)

    def image_contexts(self, image_features):
        """Per image, ctx + meta_net(f / |f|): (B, n_ctx, D)."""
        bias = self.meta_net(F.normalize(image_features, dim=-1))
        return self.ctx.unsqueeze(0) + bias.unsqueeze(1)

    def conditioned(self, ctx, class_idx=None):
        """Prompt embeddings (n, 77, D) with the context ``ctx`` (n_ctx, D) shared by the classes."""
        prefix = self.token_prefix if class_idx is None else self.token_prefix[class_idx]
        suffix = self.token_suffix if class_idx is None else self.token_suffix[class_idx]
        return torch.cat([prefix, ctx.unsqueeze(0).expand(prefix.shape[0], -1, -1), suffix], dim=1)


class CoCoOpCLIP(HostModel):
    config_node = "COCOOP"
    frozen_image_features = True
    text_depends_on_image = True

    def __init__(self, node, classnames, clip_model):
        super().__init__(clip_model)
        self.prompt_learner = CoCoOpPromptLearner(clip_model, classnames, node.N_CTX, node.CTX_INIT)

    def encode_image(self, images):
        return self.image_encoder(images)

    def encode_text(self, class_idx=None, image_features=None):
        if image_features is None:
            raise ValueError("CoCoOp's text features depend on the image: pass image_features (or call logits)")
        learner = self.prompt_learner
        contexts = learner.image_contexts(image_features)
        classes = torch.arange(learner.num_classes, device=contexts.device) if class_idx is None else class_idx
        # One set of prompts per image, each set one text-encoder call; above MODEL.TEXT_CHUNK prompts in all, the
        # B x C prompts are built and encoded chunk by chunk across the images (PromptedTextEncoder.encode_sets).
        return self.text_encoder.encode_sets(lambda image, rows: learner.conditioned(contexts[image], classes[rows]),
                                             len(contexts), learner.eot_indices(class_idx))

    def head(self, image_features, text_features):
        if self.reference_parity and text_features.dim() == 3:  # the reference's per-image products round so
            return self.per_image_head(image_features, text_features)
        return super().head(image_features, text_features)

    def per_image_head(self, image_features, text_features):
        """The reference's order: the images' features normalised, then one image at a time its text features
        normalised and multiplied with it; the rows stacked. The same values as the batched ``head``."""
        scale, image_features = self.logit_scale.exp(), unit(image_features)
        return torch.stack([scale * image @ unit(text).t() for image, text in zip(image_features, text_features)])


@TRAINER_REGISTRY.register()
class CoCoOp(HostTrainer):
    model_class = CoCoOpCLIP
    paper_configs = {"base2new": "vit_b16_c4_ep10_batch1_ctxv1"}

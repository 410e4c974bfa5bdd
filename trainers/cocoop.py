"""CoCoOp, conditional context optimisation (Zhou et al., CVPR 2022; HOSTS.md §4).

A meta-net maps each normalised image feature to a bias that is added to every context token, so each image has
its own prompts: one text-encoder call per image (the reference's structure, kept for parity). The text features
depend on the image (``text_depends_on_image``): ``encode_text`` needs the image features, and ``logits`` is the
entry point. Checkpoint keys are the reference's (``ctx``, ``meta_net.linear{1,2}.*``), registered as
``prompt_learner``.
"""
from collections import OrderedDict
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from torch import nn

from .config import config_extension, new_node
from .coop import CoOpPromptLearner
from .engine import TRAINER_REGISTRY
from .host import HostModel, freeze_all_but
from .host_trainer import PromptHostTrainer
from .prompted_clip import PromptedImageEncoder, PromptedTextEncoder


@config_extension
def add_cocoop_config(cfg):
    cfg.TRAINER.COCOOP = new_node(N_CTX=16, CTX_INIT="", PREC="fp16")


class CoCoOpPromptLearner(CoOpPromptLearner):
    """CoOp's generic context (init rule included: an init phrase sets n_ctx) plus the meta-net
    ``linear1`` (E -> E/16), ReLU, ``linear2`` (E/16 -> D), in the CLIP dtype."""

    def __init__(self, cocoop_cfg, classnames, clip_model):
        coop_like = SimpleNamespace(N_CTX=cocoop_cfg.N_CTX, CSC=False, CTX_INIT=cocoop_cfg.CTX_INIT,
                                    CLASS_TOKEN_POSITION="end")
        super().__init__(coop_like, classnames, clip_model)
        vis_dim = clip_model.visual.output_dim
        ctx_dim = self.ctx.shape[-1]
        self.meta_net = nn.Sequential(OrderedDict([
            ("linear1", nn.Linear(vis_dim, vis_dim // 16)),
            ("relu", nn.ReLU(inplace=True)),
            ("linear2", nn.Linear(vis_dim // 16, ctx_dim)),
        ])).to(device=self.ctx.device, dtype=clip_model.dtype)

    def conditioned(self, ctx, class_idx=None):
        """Prompt embeddings (n, 77, D) with the context ``ctx`` (n_ctx, D) shared by the classes."""
        prefix = self.token_prefix if class_idx is None else self.token_prefix[class_idx]
        suffix = self.token_suffix if class_idx is None else self.token_suffix[class_idx]
        return torch.cat([prefix, ctx.unsqueeze(0).expand(prefix.shape[0], -1, -1), suffix], dim=1)


class CoCoOpCLIP(HostModel):
    text_depends_on_image = True

    def __init__(self, cocoop_cfg, classnames, clip_model):
        super().__init__()
        self.prompt_learner = CoCoOpPromptLearner(cocoop_cfg, classnames, clip_model)
        self.image_encoder = PromptedImageEncoder(clip_model)
        self.text_encoder = PromptedTextEncoder(clip_model)
        self.logit_scale = clip_model.logit_scale
        self.dtype = clip_model.dtype

    def encode_image(self, images):
        return self.image_encoder(images)

    def image_contexts(self, normalised_image_features):
        """Per image, ctx + meta_net(f): (B, n_ctx, D)."""
        bias = self.prompt_learner.meta_net(normalised_image_features)
        return self.prompt_learner.ctx.unsqueeze(0) + bias.unsqueeze(1)

    def encode_text(self, class_idx=None, image_features=None):
        """Text features (B, C, E), not normalised, for each image's own prompts (``image_features`` are what
        ``encode_image`` returns)."""
        if image_features is None:
            raise ValueError("CoCoOp's text features depend on the image: pass image_features, or use logits()")
        learner = self.prompt_learner
        eot = learner.eot_indices(class_idx)
        contexts = self.image_contexts(F.normalize(image_features, dim=-1))
        return torch.stack([self.text_encoder(learner.conditioned(ctx, class_idx), eot) for ctx in contexts])

    def logits(self, images, class_idx=None):
        image_features = F.normalize(self.encode_image(images), dim=-1)
        learner = self.prompt_learner
        eot = learner.eot_indices(class_idx)
        scale = self.logit_scale.exp()
        rows = []
        for feature, ctx in zip(image_features, self.image_contexts(image_features)):
            text_features = F.normalize(self.text_encoder(learner.conditioned(ctx, class_idx), eot), dim=-1)
            rows.append(scale * feature @ text_features.t())
        return torch.stack(rows)


@TRAINER_REGISTRY.register()
class CoCoOp(PromptHostTrainer):
    config_node = "COCOOP"
    registered_name = "prompt_learner"

    @classmethod
    def build_host_model(cls, cfg, classnames, clip_model):
        print("Building custom CLIP (CoCoOp)")
        model = CoCoOpCLIP(cfg.TRAINER.COCOOP, classnames, clip_model)
        print("Turning off gradients in both the image and the text encoder")
        freeze_all_but(model, model.prompt_module_name)
        return model

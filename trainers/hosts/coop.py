"""CoOp (Zhou et al., IJCV 2022): learnable context vectors in front of (or around) the class name.

``N_CTX``, ``CSC`` (one context per class), ``CTX_INIT`` (an init phrase, whose word count sets n_ctx) and
``CLASS_TOKEN_POSITION`` end/middle/front, as in the reference (``docs/HOSTS.md``).
"""
import torch
from torch import nn

from trainers.engine import TRAINER_REGISTRY
from trainers.engine.config import config_extension, new_node
from trainers.host_api.host_trainer import HostTrainer
from trainers.host_api.interface import HostModel
from trainers.prompted_clip import ClassTokens, init_context, name_lengths

POSITIONS = ("end", "middle", "front")


@config_extension
def add_coop_config(cfg):
    cfg.TRAINER.COOP = new_node(N_CTX=16, CSC=False, CTX_INIT="", PREC="fp16", CLASS_TOKEN_POSITION="end")


class CoOpPromptLearner(ClassTokens, nn.Module):
    """Holds ``ctx``; assembles the (class subset's) prompt embeddings around the fixed token embeddings."""

    def __init__(self, clip_model, classnames, n_ctx, ctx_init="", csc=False, position="end"):
        super().__init__()
        if position not in POSITIONS:
            raise ValueError(f"TRAINER.COOP.CLASS_TOKEN_POSITION must be one of {POSITIONS}, got {position!r}")
        width = clip_model.ln_final.weight.shape[0]
        if ctx_init:
            ctx, prefix = init_context(clip_model, ctx_init)
        else:
            shape = (len(classnames), n_ctx, width) if csc else (n_ctx, width)
            print("Initializing class-specific contexts" if csc else "Initializing a generic context")
            ctx = torch.empty(shape, dtype=clip_model.dtype).normal_(std=0.02)
            prefix = " ".join(["X"] * n_ctx)
        print(f'Initial context: "{prefix}"')
        self.n_ctx = ctx.shape[-2]
        print(f"Number of context words (tokens): {self.n_ctx}")
        self.ctx = nn.Parameter(ctx.to(clip_model.token_embedding.weight.device))
        self.position = position
        self.name_lens = name_lengths(classnames)

        self.register_class_tokens(clip_model, prefix, classnames, self.n_ctx)

    def forward(self, class_idx=None):
        """Prompt embeddings (n, 77, D) for all classes or for ``class_idx``."""
        idx = torch.arange(self.num_classes, device=self.ctx.device) if class_idx is None else class_idx
        prefix, suffix = self.token_prefix[idx], self.token_suffix[idx]
        ctx = self.ctx[idx] if self.ctx.dim() == 3 else self.ctx.unsqueeze(0).expand(len(idx), -1, -1)
        if self.position == "end":
            return torch.cat([prefix, ctx, suffix], dim=1)
        rows = []
        for i, name_len in enumerate(self.name_lens[j] for j in idx.tolist()):
            name, rest = suffix[i:i + 1, :name_len], suffix[i:i + 1, name_len:]
            if self.position == "middle":
                half = self.n_ctx // 2
                rows.append(torch.cat([prefix[i:i + 1], ctx[i:i + 1, :half], name, ctx[i:i + 1, half:], rest], 1))
            else:
                rows.append(torch.cat([prefix[i:i + 1], name, ctx[i:i + 1], rest], dim=1))
        return torch.cat(rows, dim=0)


class CoOpCLIP(HostModel):
    """CLIP with CoOp's prompts on the text side; the image side is CLIP's own."""

    config_node = "COOP"
    frozen_image_features = True
    class_token_position = None  # None: the node's CLASS_TOKEN_POSITION; a host that fixes it sets it here

    def __init__(self, node, classnames, clip_model):
        super().__init__(clip_model)
        position = self.class_token_position or node.CLASS_TOKEN_POSITION
        self.prompt_learner = CoOpPromptLearner(clip_model, classnames, node.N_CTX, node.CTX_INIT, node.CSC, position)

    def encode_image(self, images):
        return self.image_encoder(images)

    def encode_text(self, class_idx=None, image_features=None):
        return self.text_encoder(self.prompt_learner(class_idx), self.prompt_learner.eot_indices(class_idx))


@TRAINER_REGISTRY.register()
class CoOp(HostTrainer):
    model_class = CoOpCLIP
    # 200 epochs, ImageNet 50 (the CoCoOp paper's CoOp baseline)
    paper_configs = {"base2new": "vit_b16_ctxv1", "per_dataset": {"imagenet": "vit_b16_ep50_ctxv1"}}

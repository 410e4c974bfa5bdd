"""CoOp (Zhou et al., IJCV 2022): learnable context vectors in front of (or around) the class name.

Behaviour as in HOSTS.md §3: ``N_CTX``, ``CSC``, ``CTX_INIT`` and ``CLASS_TOKEN_POSITION`` end/middle/front;
only ``prompt_learner`` is registered, saved and optimised.
"""
import torch
from torch import nn

from .config import config_extension, new_node
from .engine import TRAINER_REGISTRY
from .host import HostModel, freeze_all_but
from .host_trainer import PromptHostTrainer
from .prompted_clip import ClassTokens, PromptedImageEncoder, PromptedTextEncoder, init_context, name_lengths

POSITIONS = ("end", "middle", "front")


@config_extension
def add_coop_config(cfg):
    cfg.TRAINER.COOP = new_node(N_CTX=16, CSC=False, CTX_INIT="", PREC="fp16", CLASS_TOKEN_POSITION="end")


class CoOpPromptLearner(ClassTokens, nn.Module):
    """Holds ``ctx``; assembles the (class subset's) prompt embeddings around the fixed token embeddings."""

    def __init__(self, coop_cfg, classnames, clip_model):
        super().__init__()
        if coop_cfg.CLASS_TOKEN_POSITION not in POSITIONS:
            raise ValueError(f"TRAINER.COOP.CLASS_TOKEN_POSITION must be one of {POSITIONS}")
        width = clip_model.ln_final.weight.shape[0]
        dtype = clip_model.dtype
        if coop_cfg.CTX_INIT:
            ctx, prefix = init_context(clip_model, coop_cfg.CTX_INIT)
            print(f'Initial context: "{prefix}"')
        else:
            n_ctx = coop_cfg.N_CTX
            shape = (len(classnames), n_ctx, width) if coop_cfg.CSC else (n_ctx, width)
            print("Initializing class-specific contexts" if coop_cfg.CSC else "Initializing a generic context")
            ctx = torch.empty(shape, dtype=dtype).normal_(std=0.02)
            prefix = " ".join(["X"] * n_ctx)
            print(f'Initial context: "{prefix}"')
        self.n_ctx = ctx.shape[-2]
        print(f"Number of context words (tokens): {self.n_ctx}")
        self.ctx = nn.Parameter(ctx.to(clip_model.token_embedding.weight.device))
        self.position = coop_cfg.CLASS_TOKEN_POSITION
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

    def __init__(self, coop_cfg, classnames, clip_model):
        super().__init__()
        self.prompt_learner = CoOpPromptLearner(coop_cfg, classnames, clip_model)
        self.image_encoder = PromptedImageEncoder(clip_model)
        self.text_encoder = PromptedTextEncoder(clip_model)
        self.logit_scale = clip_model.logit_scale
        self.dtype = clip_model.dtype

    def encode_image(self, images):
        return self.image_encoder(images)

    def encode_text(self, class_idx=None):
        return self.text_encoder(self.prompt_learner(class_idx), self.prompt_learner.eot_indices(class_idx))


@TRAINER_REGISTRY.register()
class CoOp(PromptHostTrainer):
    config_node = "COOP"
    registered_name = "prompt_learner"

    @classmethod
    def build_host_model(cls, cfg, classnames, clip_model):
        print("Building custom CLIP")
        model = CoOpCLIP(cfg.TRAINER.COOP, classnames, clip_model)
        print("Turning off gradients in both the image and the text encoder")
        freeze_all_but(model, model.prompt_module_name)
        return model

"""Deep vision-language prompting shared by IVLP, PromptSRC and MaPLe.

- ``TextPromptLearner``: the layer-0 text context ``ctx`` with the IVLP/MaPLe init rule and the class-dependent
  token buffers (never saved).
- ``VLPromptLearner``: IVLP's independent prompts: deep text prompts and (deep) vision prompts.
- ``VLPromptedCLIP``: the host model over the stock CLIP towers; it asks its prompt learner for
  ``deep_text_prompts()`` and ``vision_prompts()``, so MaPLe's coupled learner plugs into the same model.
- ``IndependentVLCLIP``: ``VLPromptedCLIP`` over IVLP's prompts, built from an IVLP-style node (IVLP, PromptSRC),
  and reading the reference's whole-model checkpoints of those hosts.

Dtypes follow the reference: ``ctx`` (and MaPLe's ``proj``) are in the CLIP dtype; every other prompt tensor is
fp32 and cast to the activations' dtype where it is inserted. The reference casts those with ``.half()`` in every
precision, so under fp32/amp its prompts are rounded through fp16; ``round_prompts_fp16`` reproduces that.
"""
import re

import torch
from torch import nn

from trainers.host_api.interface import HostModel
from trainers.prompted_clip import ClassTokens, embed_tokens, eot_indices, tokenize


def text_width(clip_model):
    return clip_model.ln_final.weight.shape[0]


def vision_width(clip_model):
    return clip_model.visual.conv1.out_channels


def num_layers(transformer):
    return len(transformer.resblocks)


def require_vit(clip_model, method):
    if not hasattr(clip_model.visual, "transformer"):
        raise ValueError(f"{method} puts prompts into the image encoder and needs a ViT backbone, "
                         "not a ResNet (MODEL.BACKBONE.NAME)")


def check_depth(key, depth, minimum, maximum):
    if not minimum <= depth <= maximum:
        raise ValueError(f"{key} must be between {minimum} and {maximum} (the number of transformer layers), "
                         f"got {depth}")


def normal_prompts(count, n_tokens, width, device):
    """``count`` fp32 prompt tensors (n_tokens, width) drawn from N(0, 0.02)."""
    return nn.ParameterList(
        nn.Parameter(torch.empty(n_tokens, width, device=device).normal_(std=0.02)) for _ in range(count)
    )


class TextPromptLearner(ClassTokens, nn.Module):
    """The layer-0 text context and the fixed token embeddings around it.

    Init rule of IVLP and MaPLe: with an init phrase of at least ``n_ctx`` tokens, ``ctx`` is the embedding of
    its first ``n_ctx`` tokens and the prompt keeps the *whole* phrase (so "a photo of a" with 2 tokens gives
    ``[SOS, ctx1, ctx2, "of", "a", class, ".", EOT]``). Otherwise ``ctx`` is random and the placeholder is
    "X" x n_ctx. (The reference tests ``n_ctx <= 4``, the token count of its default phrase.)
    """

    def __init__(self, clip_model, classnames, n_ctx, ctx_init):
        super().__init__()
        if n_ctx < 1:
            raise ValueError(f"The number of text context tokens must be at least 1, got {n_ctx}")
        device = clip_model.token_embedding.weight.device
        phrase = ctx_init.replace("_", " ").strip() if ctx_init else ""
        phrase_tokens = tokenize(phrase) if phrase else None
        if phrase and n_ctx <= int(eot_indices(phrase_tokens)[0]) - 1:
            ctx = embed_tokens(clip_model, phrase_tokens)[0, 1:1 + n_ctx].clone()
            prefix = phrase
        else:
            if phrase:
                print(f'The init phrase "{phrase}" is shorter than {n_ctx} tokens: random initialisation')
            ctx = torch.empty(n_ctx, text_width(clip_model), dtype=clip_model.dtype, device=device).normal_(std=0.02)
            prefix = " ".join(["X"] * n_ctx)
        print(f'Initial text context: "{prefix}"')
        print(f"Number of context words (tokens) for language prompting: {n_ctx}")
        self.n_ctx = n_ctx
        self.ctx = nn.Parameter(ctx.to(device))

        self.register_class_tokens(clip_model, prefix, classnames, n_ctx)

    def forward(self, class_idx=None):
        """Layer-0 prompt embeddings (n, 77, D) of all classes or of ``class_idx``: ``[SOS, ctx, suffix]``."""
        prefix = self.token_prefix if class_idx is None else self.token_prefix[class_idx]
        suffix = self.token_suffix if class_idx is None else self.token_suffix[class_idx]
        ctx = self.ctx.unsqueeze(0).expand(prefix.shape[0], -1, -1)
        return torch.cat([prefix, ctx, suffix], dim=1)

    @property
    def has_vision_prompts(self):
        return False

    def deep_text_prompts(self):
        """Text prompts replacing positions 1..n before blocks 1, 2, ...: none here."""
        return []

    def vision_prompts(self):
        """(prompts appended before ``ln_pre`` or None, prompts replacing the last tokens before blocks 1, 2, ...)."""
        return None, []


class VLPromptLearner(TextPromptLearner):
    """IVLP's independent prompts: ``ctx``, ``deep_text.k`` (layer k+1), ``vision_ctx`` (appended
    after the patches) and ``deep_vision.k`` (layer k+1). Depth J means layers 0..J-1 get fresh prompts; vision
    depth 0 (or no vision tokens) means no vision prompts at all."""

    def __init__(self, clip_model, classnames, n_ctx_text, n_ctx_vision, depth_text, depth_vision, ctx_init,
                 method="IVLP"):
        super().__init__(clip_model, classnames, n_ctx_text, ctx_init)
        device = clip_model.token_embedding.weight.device
        check_depth("PROMPT_DEPTH_TEXT", depth_text, 1, num_layers(clip_model.transformer))
        self.deep_text = normal_prompts(depth_text - 1, n_ctx_text, text_width(clip_model), device)
        if depth_vision > 0 and n_ctx_vision > 0:
            require_vit(clip_model, method)
            check_depth("PROMPT_DEPTH_VISION", depth_vision, 0, num_layers(clip_model.visual.transformer))
            self.vision_ctx = nn.Parameter(
                torch.empty(n_ctx_vision, vision_width(clip_model), device=device).normal_(std=0.02))
            self.deep_vision = normal_prompts(depth_vision - 1, n_ctx_vision, vision_width(clip_model), device)
            print(f"Number of vision prompt tokens: {n_ctx_vision}, depth {depth_vision}")
        else:
            self.register_parameter("vision_ctx", None)
            self.deep_vision = nn.ParameterList()
            print("No vision prompts (language-only prompting)")

    @property
    def has_vision_prompts(self):
        return self.vision_ctx is not None

    def deep_text_prompts(self):
        return list(self.deep_text)

    def vision_prompts(self):
        return self.vision_ctx, list(self.deep_vision)


class VLPromptedCLIP(HostModel):
    """CLIP with prompts in both towers, supplied by ``prompt_learner`` (IVLP/PromptSRC or MaPLe learners)."""

    overridable_settings = ("PREC", "ROUND_PROMPTS_FP16")
    reference_rounds_prompts_fp16 = True  # IVLP's, PromptSRC's and MaPLe's references cast with .half()

    def __init__(self, prompt_learner, clip_model, round_prompts_fp16=False):
        super().__init__(clip_model)
        self.prompt_learner = prompt_learner
        self.round_prompts_fp16 = round_prompts_fp16
        self.image_encoder_prompted = prompt_learner.has_vision_prompts

    def encode_image(self, images):
        first, deep = self.prompt_learner.vision_prompts()
        if first is None:
            return self.image_encoder(images)
        return self.image_encoder(images, first, deep, round_fp16=self.round_prompts_fp16)

    def encode_text(self, class_idx=None, image_features=None):
        learner = self.prompt_learner
        return self.text_encoder(learner(class_idx), learner.eot_indices(class_idx), learner.deep_text_prompts(),
                                 round_fp16=self.round_prompts_fp16)


# The reference's whole-model keys of IVLP's prompts (its deep prompts are named by the block they enter).
_REFERENCE_PREFIXES = ("prompt_learner.", "image_encoder.", "text_encoder.")
_DEEP_TEXT = re.compile(r"text_encoder\.transformer\.resblocks\.(\d+)\.VPT_shallow")
_DEEP_VISION = re.compile(r"image_encoder\.transformer\.resblocks\.(\d+)\.VPT_shallow")


class IndependentVLCLIP(VLPromptedCLIP):
    """IVLP's architecture (IVLP, and PromptSRC on top of it), from a node with ``N_CTX_TEXT``, ``N_CTX_VISION``,
    ``PROMPT_DEPTH_TEXT``, ``PROMPT_DEPTH_VISION``, ``CTX_INIT`` and ``ROUND_PROMPTS_FP16``. Its checkpoint folder is
    the reference's ``VLPromptLearner``, holding our prompt learner's keys: ``ctx``, ``deep_text.k``, ``vision_ctx``
    and ``deep_vision.k`` (k = layer - 1)."""

    checkpoint_name = "VLPromptLearner"

    def __init__(self, node, classnames, clip_model):
        learner = VLPromptLearner(clip_model, classnames, node.N_CTX_TEXT, node.N_CTX_VISION, node.PROMPT_DEPTH_TEXT,
                                  node.PROMPT_DEPTH_VISION, node.CTX_INIT, method=self.config_node)
        super().__init__(learner, clip_model, node.ROUND_PROMPTS_FP16)

    @classmethod
    def adapt_state_dict(cls, state_dict):
        """The prompt tensors of a reference checkpoint (the whole CustomCLIP) under our names; frozen CLIP weights,
        token buffers and PromptSRC's ``ZS_image_encoder`` are left out. Our own layout passes unchanged."""
        if not any(key.startswith(_REFERENCE_PREFIXES) for key in state_dict):
            return state_dict
        ours = {}
        for key, value in state_dict.items():
            deep_text, deep_vision = _DEEP_TEXT.fullmatch(key), _DEEP_VISION.fullmatch(key)
            if key == "prompt_learner.ctx":
                ours["ctx"] = value
            elif key == "image_encoder.VPT":
                ours["vision_ctx"] = value
            elif deep_text:
                ours[f"deep_text.{int(deep_text.group(1)) - 1}"] = value
            elif deep_vision:
                ours[f"deep_vision.{int(deep_vision.group(1)) - 1}"] = value
        print(f"Reference checkpoint layout: kept {len(ours)} prompt tensors of {len(state_dict)} entries")
        return ours

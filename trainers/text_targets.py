"""Frozen text features of hand-written prompts: the regularisation targets of KgCoOp and PromptSRC.

Both references build a second CLIP for these; here the host's own (frozen) CLIP is used, since its weights are
the same. PromptSRC's targets come from an fp32 CLIP even when the host runs in fp16, so an fp32 copy of the text
tower is made for them when needed (and dropped after use).
"""
import copy

import torch
from torch import nn

from .prompted_clip import PromptedTextEncoder, eot_indices, tokenize

CHUNK = 256  # prompts per text-encoder call: bounds memory for 1000-class datasets


class _Fp32TextTower(nn.Module):
    """An fp32 copy of what ``PromptedTextEncoder`` reads from a CLIP model (``.float()`` of the fp16 weights)."""

    def __init__(self, clip_model):
        super().__init__()
        self.transformer = copy.deepcopy(clip_model.transformer).float()
        self.positional_embedding = clip_model.positional_embedding.detach().float()
        self.ln_final = copy.deepcopy(clip_model.ln_final).float()
        self.text_projection = clip_model.text_projection.detach().float()
        self.dtype = torch.float32


@torch.no_grad()
def encode_texts(clip_model, texts, fp32=False):
    """Unnormalised text features (N, E) of ``texts`` through the frozen CLIP (in fp32 when ``fp32``)."""
    fp32 = fp32 and clip_model.dtype != torch.float32
    encoder = PromptedTextEncoder(_Fp32TextTower(clip_model) if fp32 else clip_model)
    dtype = torch.float32 if fp32 else clip_model.dtype
    device = clip_model.token_embedding.weight.device
    features = []
    for start in range(0, len(texts), CHUNK):
        tokens = tokenize(texts[start:start + CHUNK]).to(device)
        embeddings = clip_model.token_embedding(tokens).type(dtype)
        features.append(encoder(embeddings, eot_indices(tokens)))
    return torch.cat(features)


def class_texts(template, classnames):
    """``template`` with "{}" replaced by each class name (underscores read as spaces)."""
    return [template.replace("{}", name.replace("_", " ")) for name in classnames]


def template_mean_features(clip_model, classnames, templates, fp32=True):
    """(n_cls, E): per class, the mean over ``templates`` of the raw, unnormalised features (PromptSRC §8.1)."""
    per_template = [encode_texts(clip_model, class_texts(t, classnames), fp32=fp32) for t in templates]
    return torch.stack(per_template, dim=1).mean(dim=1)

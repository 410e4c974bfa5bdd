"""Frozen text features of hand-written prompts: the regularisation targets of KgCoOp and PromptSRC.

Both references build a second CLIP for these; here the host's own frozen text tower is used, since its weights
are the same. PromptSRC's targets come from an fp32 CLIP even when the host runs in fp16, so an fp32 copy of the
text tower is made for them when needed (and dropped after use); KgCoOp's reference encodes its targets with an
fp16 CLIP whatever the precision, which an fp16 copy reproduces under ``MODEL.REFERENCE_PARITY``.
"""
import copy

import clip
import torch

from trainers.prompted_clip import eot_indices, tokenize

CHUNK = 256  # prompts per text-encoder call: bounds memory for 1000-class datasets


@torch.no_grad()
def encode_texts(text_encoder, token_embedding, texts, fp32=False, fp16=False):
    """Unnormalised features (N, E) of ``texts`` through the frozen ``PromptedTextEncoder`` (in fp32 when
    ``fp32``; in fp16 when ``fp16``, its weights cast as ``clip.model.convert_weights`` casts CLIP's, layer norms
    and embeddings left fp32), outside any autocast region, so that they do not depend on where they are first
    asked for."""
    if fp32 and text_encoder.dtype != torch.float32:
        text_encoder = copy.deepcopy(text_encoder).float()
        text_encoder.dtype = torch.float32
    if fp16 and text_encoder.dtype != torch.float16:
        text_encoder = copy.deepcopy(text_encoder)
        clip.model.convert_weights(text_encoder)
        text_encoder.dtype = torch.float16
    device = token_embedding.weight.device
    features = []
    with torch.autocast(device.type, enabled=False):
        for start in range(0, len(texts), CHUNK):
            tokens = tokenize(texts[start:start + CHUNK]).to(device)
            embeddings = token_embedding(tokens).type(text_encoder.dtype)
            features.append(text_encoder(embeddings, eot_indices(tokens)))
    return torch.cat(features)


def class_texts(template, classnames):
    """``template`` with "{}" replaced by each class name (underscores read as spaces)."""
    return [template.replace("{}", name.replace("_", " ")) for name in classnames]


def template_mean_features(text_encoder, token_embedding, classnames, templates, fp32=True):
    """(n_cls, E): per class, the mean over ``templates`` of the raw, unnormalised features (PromptSRC's targets)."""
    per_template = [encode_texts(text_encoder, token_embedding, class_texts(t, classnames), fp32=fp32)
                    for t in templates]
    return torch.stack(per_template, dim=1).mean(dim=1)

"""What learned prompts are made of: the vocabulary tokens nearest to each context vector (CoOp's reading of its
prompts), and for DPC how the parallel prompt P' moved away from the tuned prompt P.

Nearest tokens are measured against CLIP's token-embedding table, by cosine similarity and by Euclidean distance;
rows of the table that the weights do not hold (all zeros: the compact weights of ``trainers/prompted_clip/loading.py``)
are left out. Only vectors as wide as a token embedding can be read this way (text-side contexts).

P' - P is described per prompt tensor (its norm, relative to P's), per token (each context vector's change) and per
feature channel (the share of the squared change in each channel, and how many channels hold it).
"""
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from clip.clip import _tokenizer


def token_text(token_id):
    return _tokenizer.decode([int(token_id)]).strip() or repr(_tokenizer.decoder[int(token_id)])


@dataclass
class NearestTokens:
    vector: str  # e.g. "prompt_learner.ctx[2]"
    by_cosine: list  # (token, cosine similarity), best first
    by_distance: list  # (token, Euclidean distance), nearest first


def context_vectors(tensors, width):
    """(label, vector) for every vector of the tensors as wide as a token embedding; a (n, D) context gives n,
    a class-specific (C, n, D) one C x n."""
    vectors = []
    for name, tensor in tensors.items():
        if tensor.dim() < 2 or tensor.shape[-1] != width:
            continue
        flat = tensor.reshape(-1, width)
        shape = tensor.shape[:-1]
        for i, row in enumerate(flat):
            index = ",".join(str(int(j)) for j in torch.unravel_index(torch.tensor(i), shape))
            vectors.append((f"{name}[{index}]", row))
    return vectors


@torch.no_grad()
def nearest_tokens(tensors, token_embedding, k=5):
    """``NearestTokens`` of every context vector among the rows of ``token_embedding`` (V, D)."""
    table = token_embedding.float()
    held = table.abs().sum(dim=-1) > 0
    ids = held.nonzero().squeeze(1)
    table = table[ids]
    results = []
    for label, vector in context_vectors(tensors, table.shape[1]):
        vector = vector.float().to(table.device)
        cosine = F.normalize(table, dim=-1) @ F.normalize(vector, dim=0)
        distance = (table - vector).norm(dim=-1)
        top_cos = cosine.topk(min(k, len(ids)))
        top_dist = distance.topk(min(k, len(ids)), largest=False)
        results.append(NearestTokens(
            label,
            [(token_text(ids[i]), float(v)) for v, i in zip(top_cos.values, top_cos.indices)],
            [(token_text(ids[i]), float(v)) for v, i in zip(top_dist.values, top_dist.indices)]))
    return results


@dataclass
class PromptChange:
    name: str
    norm: float  # |P' - P|
    relative: float  # |P' - P| / |P|
    per_token: list  # |P' - P| of each vector (the tensor's last dimension is the channel)
    channel_share: torch.Tensor  # (D,) share of the squared change in each channel; sums to 1
    effective_channels: float  # 1 / sum(share^2): D when the change is spread evenly, 1 when in one channel
    top_tenth_share: float  # the share held by the 10% of channels that changed most


@torch.no_grad()
def prompt_changes(frozen, parallel):
    """``PromptChange`` of every floating-point tensor of the prompt set, P (``frozen``) to P' (``parallel``)."""
    changes = []
    for name, p in frozen.items():
        if not p.is_floating_point():
            continue
        delta = (parallel[name] - p).float()
        rows = delta.reshape(-1, delta.shape[-1]) if delta.dim() else delta.reshape(1, 1)
        squared = rows.pow(2).sum(dim=0)
        total = squared.sum()
        share = squared / total if total > 0 else torch.full_like(squared, 1.0 / len(squared))
        tenth = max(1, len(share) // 10)
        changes.append(PromptChange(
            name, float(delta.norm()), float(delta.norm() / p.float().norm().clamp_min(1e-12)),
            rows.norm(dim=-1).tolist(), share.cpu(), float(1.0 / share.pow(2).sum()),
            float(share.sort(descending=True).values[:tenth].sum())))
    return changes

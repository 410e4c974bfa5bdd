"""Prompted CLIP encoders: the stock text and image transformers run block by block, with prompt tokens
inserted or replaced between blocks. CLIP's own modules are used as they are.

Two shortcuts make them faster than the reference implementations, and differ from them only in rounding
(``docs/HOSTS.md``, "Reference parity"): the text sequence is cut after its last EOT token, and an inserted
prompt is cast to the activations' dtype once, before it is copied per class or image. ``reference_parity``
(``MODEL.REFERENCE_PARITY``) turns both off: all 77 positions run, and every copy is cast, as the references do.

The text encoder also runs many prompts in chunks (``chunk_size``, ``MODEL.TEXT_CHUNK``); see ``text_chunks.py``.
"""
import torch
from torch import nn

from trainers.prompted_clip.text_chunks import encode_in_chunks


def prompt_copies(prompt, copies, dtype, round_fp16=False, reference_order=False):
    """``prompt`` (n, D) as ``copies`` copies (copies, n, D) in ``dtype``; ``round_fp16`` rounds it through fp16
    on the way, as the reference's ``.half()`` does in every precision. Ours casts once and copies; the reference
    copies, then casts the copies (``reference_order``), so its backward pass rounds each copy's gradient."""
    def cast(tensor):
        return (tensor.half() if round_fp16 else tensor).to(dtype)

    if reference_order:
        return cast(prompt.unsqueeze(0).expand(copies, -1, -1))
    return cast(prompt).unsqueeze(0).expand(copies, -1, -1)


def causal_mask(length, device=None):
    """CLIP's additive causal mask (-inf above the diagonal) for a sequence of ``length`` tokens."""
    return torch.full((length, length), float("-inf"), device=device).triu_(1)


class PromptedTextEncoder(nn.Module):
    """Encodes prompt *embeddings* (N, 77, D) to text features (N, E).

    ``deep_prompts[k]`` (n, D) replaces positions 1..n before block k+1 (``round_fp16``: see ``prompt_copies``).
    The sequence is cut after the last EOT before the blocks run: with CLIP's causal mask later tokens cannot
    change the EOT features, and prompts are usually far shorter than 77 tokens.
    More than ``chunk_size`` prompts are encoded ``chunk_size`` at a time, recomputed in the backward pass
    (``text_chunks.py``); 0 encodes them all at once.
    """

    reference_parity = False
    chunk_size = 0

    def __init__(self, clip_model):
        super().__init__()
        self.transformer = clip_model.transformer
        self.positional_embedding = clip_model.positional_embedding
        self.ln_final = clip_model.ln_final
        self.text_projection = clip_model.text_projection
        self.dtype = clip_model.dtype

    def forward(self, prompt_embeddings, eot_indices, deep_prompts=(), round_fp16=False, first_block=1,
                insert_first=False, blend=None):
        """Representation tokens (MMRL, MMRL++) use the last three arguments: ``deep_prompts[k]`` enters before
        block ``first_block + k`` (None: the tokens there stay); with ``insert_first`` the first one is inserted
        after SOT instead (the sequence grows by n, and the EOT features are read n positions later); with
        ``blend`` = b the later ones replace positions 1..n by b * prompt + (1 - b) * the tokens there."""
        length = prompt_embeddings.shape[1] if self.reference_parity else int(eot_indices.max()) + 1
        # Every chunk runs the positions the whole would, and the projection, whose kernel BLAS picks by the row
        # count, runs once on all rows: so the chunks' values are the whole's.
        eot_features = encode_in_chunks(self._encode, self.chunk_size, prompt_embeddings, eot_indices, deep_prompts,
                                        round_fp16, length, first_block, insert_first, blend)
        return eot_features @ self.text_projection

    def encode_sets(self, prompt_rows, num_sets, eot_indices, deep_prompts=(), round_fp16=False):
        """Text features (S, N, E) of S sets of the same N prompts' positions, such as CoCoOp's prompts per image.

        ``prompt_rows(s, rows)``: the prompt embeddings of set ``s`` for the slice ``rows`` of its N prompts; the
        S x N prompts are built chunk by chunk (``chunk_size`` at a time, across sets) and never exist at once. At or
        below ``chunk_size`` prompts in all, each set is one call of its own."""
        per_set = eot_indices.shape[0]
        if not self.chunk_size or num_sets * per_set <= self.chunk_size:
            return torch.stack([self(prompt_rows(s, slice(None)), eot_indices, deep_prompts, round_fp16)
                                for s in range(num_sets)])
        length = self.positional_embedding.shape[0] if self.reference_parity else int(eot_indices.max()) + 1

        def rows(start, stop):  # flat rows of the S x N prompts, set by set
            parts = [prompt_rows(s, slice(max(start - s * per_set, 0), min(stop - s * per_set, per_set)))
                     for s in range(start // per_set, (stop - 1) // per_set + 1)]
            return torch.cat(parts) if len(parts) > 1 else parts[0]

        eot_features = encode_in_chunks(self._encode, self.chunk_size, rows, eot_indices.repeat(num_sets),
                                        deep_prompts, round_fp16, length)
        # projected set by set, as one call per set would (BLAS picks its kernel by the row count)
        return torch.stack([f @ self.text_projection for f in eot_features.view(num_sets, per_set, -1)])

    def _encode(self, prompt_embeddings, eot_indices, deep_prompts, round_fp16, length, first_block=1,
                insert_first=False, blend=None):
        """The final-norm features at each prompt's EOT position (N, D), before the text projection (``forward``
        says what the arguments do)."""
        x = (prompt_embeddings + self.positional_embedding.type(self.dtype))[:, :length]
        x = x.permute(1, 0, 2)
        mask = self.transformer.resblocks[0].attn_mask
        mask = mask[:length, :length] if mask is not None else None
        inserted = 0
        for depth, block in enumerate(self.transformer.resblocks):
            k = depth - first_block
            prompt = deep_prompts[k] if 0 <= k < len(deep_prompts) else None
            if prompt is not None and insert_first and not inserted:
                x, inserted = self._insert_after_sot(x, prompt, round_fp16), prompt.shape[0]
                mask = causal_mask(x.shape[0], x.device) if mask is not None else None
            elif prompt is not None:
                x = self._replace_leading_slots(x, prompt, round_fp16, blend)
            x = self._run_block(block, x, mask)
        x = self.ln_final(x.permute(1, 0, 2)).type(self.dtype)
        return x[torch.arange(x.shape[0], device=x.device), eot_indices + inserted]

    def _copies(self, x, prompt, round_fp16):
        return prompt_copies(prompt, x.shape[1], x.dtype, round_fp16, self.reference_parity).permute(1, 0, 2)

    def _replace_leading_slots(self, x, prompt, round_fp16, blend=None):
        """Sequence-first ``x`` (L, N, D): positions 1..n become ``prompt`` (n, D), or the ``blend`` of the two."""
        copies, n = self._copies(x, prompt, round_fp16), prompt.shape[0]
        if blend is not None:
            copies = blend * copies + (1 - blend) * x[1:1 + n]
        return torch.cat([x[:1], copies, x[1 + n:]], dim=0)

    def _insert_after_sot(self, x, prompt, round_fp16):
        return torch.cat([x[:1], self._copies(x, prompt, round_fp16), x[1:]], dim=0)

    @staticmethod
    def _run_block(block, x, mask):
        """The stock ResidualAttentionBlock's computation with the causal mask cut to the sequence length."""
        if mask is None or mask.shape[0] == block.attn_mask.shape[0]:
            return block(x)
        mask = mask.to(dtype=x.dtype, device=x.device)
        h = block.ln_1(x)
        x = x + block.attn(h, h, h, need_weights=False, attn_mask=mask)[0]
        return x + block.mlp(block.ln_2(x))


class PromptedImageEncoder(nn.Module):
    """CLIP's ViT with optional prompt tokens appended after the patches.

    ``prompts`` (n, D) enter after the positional embedding (so they get none) and before ``ln_pre``;
    ``deep_prompts[k]`` replaces the last n tokens before block k+1 (``round_fp16``: see ``prompt_copies``).
    Without prompts it is CLIP's own ``visual`` forward (ResNet backbones included).
    """

    reference_parity = False

    def __init__(self, clip_model):
        super().__init__()
        self.visual = clip_model.visual
        self.dtype = clip_model.dtype

    def forward(self, images, prompts=None, deep_prompts=(), round_fp16=False):
        images = images.type(self.dtype)
        if prompts is None:
            return self.visual(images)
        v = self.visual
        if not hasattr(v, "class_embedding"):
            raise ValueError("Vision prompts need a ViT backbone; this CLIP has a ResNet image encoder")
        x = v.conv1(images)
        x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)
        cls = v.class_embedding.to(x.dtype) + torch.zeros(x.shape[0], 1, x.shape[-1], dtype=x.dtype, device=x.device)
        x = torch.cat([cls, x], dim=1) + v.positional_embedding.to(x.dtype)
        x = torch.cat([x, self._copies(prompts, x.shape[0], x.dtype, round_fp16)], dim=1)
        x = v.ln_pre(x).permute(1, 0, 2)
        for depth, block in enumerate(v.transformer.resblocks):
            if 1 <= depth <= len(deep_prompts):
                prompt = deep_prompts[depth - 1]  # the last n positions of sequence-first x (L, B, D)
                x = torch.cat([x[:-prompt.shape[0]], self._copies(prompt, x.shape[1], x.dtype, round_fp16)
                               .permute(1, 0, 2)], dim=0)
            x = block(x)
        x = v.ln_post(x.permute(1, 0, 2)[:, 0, :])
        return x @ v.proj

    def _copies(self, prompt, copies, dtype, round_fp16):
        return prompt_copies(prompt, copies, dtype, round_fp16, self.reference_parity)

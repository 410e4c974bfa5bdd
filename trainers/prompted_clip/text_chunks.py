"""Many prompts through the text tower in chunks, so that memory does not grow with the class count.

A training text pass over C classes keeps every block's activations for all C prompts until the backward pass:
linear in C (about 22 MB per class for a ViT-B/16 text tower in fp16 at 77 positions, so 22 GB on ImageNet).
With more than ``chunk_size`` prompts (``MODEL.TEXT_CHUNK``), each chunk of at most ``chunk_size`` runs under
``torch.utils.checkpoint`` (non-reentrant): its activations are dropped after the forward pass and recomputed,
one chunk at a time, in the backward. What stays is each chunk's inputs and outputs. Without a gradient (tests,
frozen targets) the chunks simply run one after the other.

- Values: every chunk runs the same sequence length as the whole batch, chunks are of equal size (to one), the
  text projection runs once on all rows, and each prompt's computation is independent of the others', so on the
  CPU the features are bit-identical to one call's (tested); gradients summed over chunks differ from one
  call's only in fp32 rounding. (A GPU's BLAS may pick other kernels for another batch size, which changes the
  last bits.)
- Autocast: the recomputation runs under the autocast state of the forward pass (``torch.utils.checkpoint``
  records and restores it).
- DDP: recomputation happens inside the module's own forward/backward, so gradients are reduced once.
- The recomputation costs one more forward pass of the chunked tower; at or below ``chunk_size`` prompts nothing
  changes (one call, as before).
"""
import torch
from torch.utils.checkpoint import checkpoint


def chunk_bounds(count, chunk_size):
    """(start, stop) of each chunk: as few chunks of at most ``chunk_size`` as cover ``count``, of equal sizes (to
    one), so that none is small (BLAS computes a matrix of a few rows with other kernels); one chunk when
    ``chunk_size`` is 0 or at least ``count``."""
    if chunk_size <= 0 or count <= chunk_size:
        return [(0, count)]
    chunks = -(-count // chunk_size)
    sizes = [count // chunks + (i < count % chunks) for i in range(chunks)]
    stops = [sum(sizes[:i + 1]) for i in range(chunks)]
    return list(zip([0, *stops[:-1]], stops))


def encode_in_chunks(encode, chunk_size, prompts, eot_indices, deep_prompts, *args):
    """``encode(prompt_embeddings, eot_indices, deep_prompts, *args)`` -> (N, D), chunk by chunk along N.

    ``prompts``: the (N, 77, D) prompt embeddings, or a function ``(start, stop) ->`` rows start..stop of them, which
    a chunk calls when it runs (and again when it is recomputed), so that the N prompts never exist at once."""
    count = eot_indices.shape[0]
    bounds = chunk_bounds(count, chunk_size)
    if len(bounds) == 1:
        return encode(prompts(0, count) if callable(prompts) else prompts, eot_indices, deep_prompts, *args)
    deep_prompts = tuple(deep_prompts)

    def encode_chunk(rows, *rest):
        return encode(prompts(*rows) if callable(prompts) else rows, *rest)

    recompute = torch.is_grad_enabled()
    features = []
    for start, stop in bounds:
        chunk = ((start, stop) if callable(prompts) else prompts[start:stop], eot_indices[start:stop], deep_prompts,
                 *args)
        if recompute:
            # The text tower has no randomness (no dropout): no RNG state to save and restore.
            features.append(checkpoint(encode_chunk, *chunk, use_reentrant=False, preserve_rng_state=False))
        else:
            features.append(encode_chunk(*chunk))
    return torch.cat(features)

"""Turning class names into token ids and embeddings (HOSTS.md §1.2)."""
import torch

import clip
from clip.clip import _tokenizer


def class_prompt_texts(prefix, classnames):
    """``"<prefix> <class name>."`` with underscores in the class name read as spaces."""
    return [f"{prefix} {name.replace('_', ' ')}." for name in classnames]


def tokenize(texts, context_length=77):
    return clip.tokenize(texts, context_length=context_length).long()


def eot_indices(tokenized):
    """EOT has the largest token id, so its position is the argmax of each row."""
    return tokenized.argmax(dim=-1)


def name_lengths(classnames):
    """BPE token count of each class name (without the final ".")."""
    return [len(_tokenizer.encode(name.replace("_", " "))) for name in classnames]


@torch.no_grad()
def embed_tokens(clip_model, tokenized):
    return clip_model.token_embedding(tokenized.to(clip_model.token_embedding.weight.device)).type(clip_model.dtype)


def init_context(clip_model, ctx_init):
    """The embeddings of an init phrase's words: (n_words, D), and the phrase with underscores as spaces."""
    phrase = ctx_init.replace("_", " ")
    n_ctx = len(phrase.split(" "))
    embedding = embed_tokens(clip_model, tokenize(phrase))
    return embedding[0, 1:1 + n_ctx].clone(), phrase

"""Turning class names into token ids and embeddings."""
import clip
import torch
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


class ClassTokens:
    """Mixin for prompt learners (``nn.Module``): the fixed token embeddings around the learnable context.

    The buffers depend on the class list, so they are rebuilt from the class names and never saved
    (non-persistent): a checkpoint trained on base classes then loads for new classes.
    """

    def register_class_tokens(self, clip_model, prefix, classnames, n_ctx):
        """``"<prefix> <class name>."`` per class: SOS as ``token_prefix``, everything after the ``n_ctx``
        context slots (class tokens, ".", EOT, padding) as ``token_suffix``."""
        tokenized = tokenize(class_prompt_texts(prefix, classnames))
        embedding = embed_tokens(clip_model, tokenized)
        self.register_buffer("tokenized_prompts", tokenized.to(embedding.device), persistent=False)
        self.register_buffer("token_prefix", embedding[:, :1], persistent=False)
        self.register_buffer("token_suffix", embedding[:, 1 + n_ctx:], persistent=False)

    @property
    def num_classes(self):
        return self.token_prefix.shape[0]

    def eot_indices(self, class_idx=None):
        tokens = self.tokenized_prompts if class_idx is None else self.tokenized_prompts[class_idx]
        return eot_indices(tokens)

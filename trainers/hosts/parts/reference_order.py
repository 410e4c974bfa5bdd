"""Pieces of the references' order of operations that several hosts follow under ``MODEL.REFERENCE_PARITY``.

They compute the same values as the default paths; they differ from them only in how the gradients round.
"""


def unit(features):
    """``features`` divided by their norm along the last dimension, as the references write it (the same values as
    ``F.normalize`` for any nonzero row)."""
    return features / features.norm(dim=-1, keepdim=True)


def normalised_once(host, image_features, text_features):
    """(logits, image, text): each tower's features normalised once, that one tensor feeding the logits and every
    loss term, as PromptSRC's and KgCoOp's references do. The default normalises again for the loss terms (in
    ``head`` and in the term): the same values, but the two branches' gradients then meet after the normalisation's
    backward instead of before it, and round differently."""
    image, text = unit(image_features), unit(text_features)
    return host.logit_scale.exp() * image @ text.t(), image, text

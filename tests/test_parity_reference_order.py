"""Under MODEL.REFERENCE_PARITY a host's loss follows its reference's order of operations, bit for bit; without it,
the default order, unchanged.

Each test restates an order in a few lines of its own, from CLIP's stock modules where the reference uses them:
- CoCoOp's reference normalises the images' features, then per image encodes its prompts, normalises that text,
  multiplies and stacks the rows;
- PromptSRC's reference normalises each tower once and feeds that one tensor to the logits and the L1 terms;
- KgCoOp's reference encodes its hand-crafted prompts with a second CLIP that stays fp16 in every precision, and
  normalises the learned text once for the logits and the score.
The restatements are compared with ``torch.equal``: logits, loss and every prompt gradient, on a tiny fp32 CLIP.
"""
import copy

import clip
import pytest
import torch
import torch.nn.functional as F
from support.hosts import build_host, random_images

from trainers.prompted_clip import build_tiny_clip

LABELS = torch.tensor([0, 1, 2])


def reference_text_encoder(clip_model, prompts, tokenized):
    """The references' TextEncoder: CLIP's stock transformer on all 77 positions, the EOT row projected."""
    x = prompts + clip_model.positional_embedding.type(clip_model.dtype)
    x = clip_model.transformer(x.permute(1, 0, 2)).permute(1, 0, 2)
    x = clip_model.ln_final(x).type(clip_model.dtype)
    return x[torch.arange(x.shape[0]), tokenized.argmax(dim=-1)] @ clip_model.text_projection


def unit(x):
    return x / x.norm(dim=-1, keepdim=True)


def the_hosts(host, parity, clip_model):
    model = build_host(host, "MODEL.REFERENCE_PARITY", parity, clip_model=clip_model)
    return model, [p for p in model.prompt_learner.parameters() if p.requires_grad]


def assert_same(model, params, images, restated):
    """The host's loss and the restated one: logits, loss and gradients bit for bit."""
    ours = model.loss(images, LABELS)
    theirs_logits, theirs_loss = restated()
    assert torch.equal(ours.logits, theirs_logits)
    assert torch.equal(ours.total, theirs_loss)
    ours_grads = torch.autograd.grad(ours.total, params)
    theirs_grads = torch.autograd.grad(theirs_loss, params)
    for mine, reference in zip(ours_grads, theirs_grads):
        assert reference.abs().max() > 0
        assert torch.equal(mine, reference), (mine - reference).abs().max()


# ---- CoCoOp: the per-image head ----------------------------------------------------------------------------------

def cocoop_reference_order(model, clip_model, images):
    learner = model.prompt_learner
    image_features = unit(clip_model.visual(images))
    shifted = learner.ctx.unsqueeze(0) + learner.meta_net(image_features).unsqueeze(1)
    rows = []
    for ctx, image in zip(shifted, image_features):
        ctx = ctx.unsqueeze(0).expand(learner.num_classes, -1, -1)
        prompts = torch.cat([learner.token_prefix, ctx, learner.token_suffix], dim=1)
        text = unit(reference_text_encoder(clip_model, prompts, learner.tokenized_prompts))
        rows.append(model.logit_scale.exp() * image @ text.t())
    logits = torch.stack(rows)
    return logits, F.cross_entropy(logits, LABELS)


def cocoop_default_order(model, images):
    image_features = model.encode_image(images)
    text = F.normalize(model.encode_text(None, image_features), dim=-1)
    scaled = model.logit_scale.exp() * F.normalize(image_features, dim=-1)
    logits = (scaled.unsqueeze(1) @ text.transpose(1, 2)).squeeze(1)
    return logits, F.cross_entropy(logits, LABELS)


def test_cocoop_parity_is_the_references_per_image_order():
    clip_model, images = build_tiny_clip(), random_images()
    model, params = the_hosts("CoCoOp", True, clip_model)
    assert_same(model, params, images, lambda: cocoop_reference_order(model, clip_model, images))


def test_cocoop_default_is_the_batched_order_as_before():
    clip_model, images = build_tiny_clip(), random_images()
    model, params = the_hosts("CoCoOp", False, clip_model)
    assert_same(model, params, images, lambda: cocoop_default_order(model, images))


# ---- PromptSRC: one normalisation per tower -------------------------------------------------------------------

def promptsrc_terms(model, clip_model, images, logits, text, image):
    """The reference's loss from its logits and the (normalised) features it feeds to the L1 terms."""
    fixed = unit(model.text_targets)
    with torch.no_grad():
        zero_shot = unit(clip_model.visual(images))
        zero_shot_logits = model.logit_scale.exp() * zero_shot @ fixed.t()
    text_l1 = F.l1_loss(text, fixed, reduction="mean") * model.text_weight
    image_l1 = F.l1_loss(image, zero_shot, reduction="mean") * model.image_weight
    kl = F.kl_div(F.log_softmax(logits / 1, dim=1), F.log_softmax(zero_shot_logits / 1, dim=1), reduction="sum",
                  log_target=True) * (1 * 1) / logits.numel()
    return logits, F.cross_entropy(logits, LABELS) + (kl + text_l1 + image_l1)


def promptsrc_reference_order(model, clip_model, images):
    text, image = unit(model.encode_text()), unit(model.encode_image(images))
    logits = model.logit_scale.exp() * image @ text.t()
    return promptsrc_terms(model, clip_model, images, logits, text, image)


def promptsrc_default_order(model, clip_model, images):
    text, image = model.encode_text(), model.encode_image(images)
    logits = model.logit_scale.exp() * F.normalize(image, dim=-1) @ F.normalize(text, dim=-1).t()
    return promptsrc_terms(model, clip_model, images, logits, F.normalize(text, dim=-1), F.normalize(image, dim=-1))


@pytest.mark.parametrize("parity", [True, False])
def test_promptsrc_normalises_once_under_parity_and_as_before_without(parity):
    clip_model, images = build_tiny_clip(), random_images()
    model, params = the_hosts("PromptSRC", parity, clip_model)
    assert model.round_prompts_fp16 is parity  # the rounding the switch implies
    order = promptsrc_reference_order if parity else promptsrc_default_order
    assert_same(model, params, images, lambda: order(model, clip_model, images))


# ---- KgCoOp: the fp16 hand-crafted features, one normalisation -------------------------------------------------

def kgcoop_reference_order(model, clip_model, images):
    second_clip = copy.deepcopy(clip_model)
    clip.model.convert_weights(second_clip)  # what clip.build_model makes of the weights: fp16 whatever PREC says
    with torch.no_grad():
        handcrafted = unit(second_clip.encode_text(clip.tokenize(model.texts)))
    learner = model.prompt_learner
    image = unit(clip_model.visual(images))
    text = unit(reference_text_encoder(clip_model, learner(), learner.tokenized_prompts))
    logits = model.logit_scale.exp() * image @ text.t()
    score = 1.0 - torch.mean(torch.nn.CosineSimilarity(dim=1, eps=1e-07)(text, unit(handcrafted)))
    return handcrafted, logits, F.cross_entropy(logits, LABELS) + model.weight * score


def kgcoop_default_order(model, clip_model, images):
    with torch.no_grad():  # the host's own fp32 tower, cut after the EOT
        handcrafted = F.normalize(model.text_encoder(
            clip_model.token_embedding(clip.tokenize(model.texts)), clip.tokenize(model.texts).argmax(-1)), dim=-1)
    text, image = model.encode_text(), model.encode_image(images)
    logits = model.logit_scale.exp() * F.normalize(image, dim=-1) @ F.normalize(text, dim=-1).t()
    score = 1.0 - torch.mean(F.cosine_similarity(F.normalize(text, dim=-1), unit(handcrafted), dim=1, eps=1e-7))
    return handcrafted, logits, F.cross_entropy(logits, LABELS) + model.weight * score


@pytest.mark.parametrize("parity", [True, False])
def test_kgcoop_follows_the_reference_under_parity_and_is_as_before_without(parity):
    clip_model, images = build_tiny_clip(), random_images()
    model, params = the_hosts("KgCoOp", parity, clip_model)
    order = kgcoop_reference_order if parity else kgcoop_default_order
    handcrafted, logits, loss = order(model, clip_model, images)
    assert model.handcrafted_text_features.dtype == (torch.float16 if parity else torch.float32)
    assert torch.equal(model.handcrafted_text_features, handcrafted)
    assert_same(model, params, images, lambda: order(model, clip_model, images)[1:])


def test_kgcoop_recomputes_its_targets_when_the_switch_changes():
    model, _ = the_hosts("KgCoOp", False, build_tiny_clip())
    fast = model.handcrafted_text_features
    model.reference_parity = True
    assert model.handcrafted_text_features.dtype == torch.float16
    model.reference_parity = False
    assert torch.equal(model.handcrafted_text_features, fast)

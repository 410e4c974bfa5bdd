"""Multi-modal representation learning, shared by MMRL and MMRL++ (``mmrl.py``, ``mmrlpp.py``).

A few representation tokens live in one shared low-dimensional space (``compound_rep_tokens``, (n, REP_DIM)); per
layer of ``REP_LAYERS`` (1-based transformer layers) a projection maps them into each tower. In the text tower they
are inserted after SOT at the first of those layers and replace (MMRL) or blend into (MMRL++, ``BETA``) the same
positions at the later ones; the text input is the dataset's hand-written template (CoOp's table). The image tower
does the same after the class token, and gives two features: the class token through CLIP's ``proj`` and the
mean of the representation tokens through a projection of their own (``proj_rep``; MMRL++: ``proj + A @ B``).

Logits: 100 * cos for each branch; the fused logits are ALPHA * class-token + (1 - ALPHA) * representation.
Loss: ALPHA * CE(class-token) + (1 - ALPHA) * CE(representation) + REG_WEIGHT * (1 - cos to frozen CLIP's image
features) + REG_WEIGHT * (1 - cos to frozen CLIP's text features of the same template), means over the batch and
the classes. The head gives the fused logits while training and, at test time, what the reference's rule says
(``branch_for``): fused on base classes (B2N), in few-shot (FS) and on ImageNet itself (CD), the class-token
logits on new classes and other datasets.

Layout here: ``encode_image`` returns (B, 2, E), the class-token and the representation features stacked, so that
DPC handles them as one image feature; everything learned is in ``prompt_learner`` (its parameter names are the
reference's without ``representation_learner.``; ``proj_rep`` is the reference's ``image_encoder.proj_rep``).
"""
import torch
import torch.nn.functional as F
from torch import nn

from trainers.engine.config import config_extension
from trainers.host_api.interface import HostLoss, HostModel
from trainers.hosts.parts.text_targets import class_texts, encode_texts
from trainers.hosts.parts.vl_prompts import num_layers, require_vit, text_width, vision_width
from trainers.prompted_clip import embed_tokens, eot_indices, tokenize
from trainers.prompted_clip.templates import dataset_template

LOGIT_SCALE = 100.0  # the reference's fixed scale (not CLIP's learned logit_scale)
TASKS = ("B2N", "FS", "CD")
FUSED, CLASS_TOKEN = "fused", "class token"
REFERENCE_LEARNER_PREFIX = "representation_learner."


@config_extension
def add_task_config(cfg):
    # The protocol a run belongs to, which decides MMRL's test-time logits (its reference's top-level key):
    # B2N base-to-new, FS few-shot, CD cross-dataset and domain generalisation.
    cfg.TASK = "B2N"


def branch_for(cfg):
    """The logits the reference's test uses for this run's data: ``FUSED`` or ``CLASS_TOKEN``."""
    if cfg.TASK not in TASKS:
        raise ValueError(f"TASK must be one of {', '.join(TASKS)} (base-to-new, few-shot, cross-dataset); "
                         f"got {cfg.TASK!r}")
    if cfg.TASK == "FS":
        return FUSED
    if cfg.TASK == "CD":
        return FUSED if cfg.DATASET.NAME == "ImageNet" else CLASS_TOKEN
    return FUSED if cfg.DATASET.SUBSAMPLE_CLASSES == "base" else CLASS_TOKEN


def check_rep_layers(key, layers, clip_model):
    """REP_LAYERS: 1-based layers, increasing, within both towers."""
    depth = min(num_layers(clip_model.transformer), num_layers(clip_model.visual.transformer))
    layers = list(layers)
    if not layers:
        raise ValueError(f"{key} is empty: name the (1-based) layers that get representation tokens, e.g. "
                         "[6, 7, 8, 9, 10, 11, 12] as the reference's configs")
    if layers != sorted(set(layers)) or layers[0] < 1 or layers[-1] > depth:
        raise ValueError(f"{key} must be increasing layer numbers within 1..{depth} (this CLIP's depth); "
                         f"got {layers}")
    return layers


class RepresentationLearner(nn.Module):
    """The tokens and the learned image projection; subclasses supply the per-layer maps ``to_text(tokens, i)``,
    ``to_vision(tokens, i)`` and ``rep_projection(proj)`` (the representation features' output projection)."""

    def __init__(self, clip_model, n_tokens, rep_dim, rep_layers):
        super().__init__()
        require_vit(clip_model, "MMRL")
        device = clip_model.token_embedding.weight.device
        self.rep_layers = list(rep_layers)
        self.dtype = clip_model.dtype
        self.compound_rep_tokens = nn.Parameter(torch.empty(n_tokens, rep_dim, device=device).normal_(std=0.02))

    @property
    def has_vision_prompts(self):
        return True

    def layer_tokens(self, interleaved=False):
        """Per layer of REP_LAYERS, the tokens in the text and the image width, in the CLIP dtype: all text maps,
        then all image maps; ``interleaved``, layer by layer, text then image, as the reference builds them. The
        values are the same; the order in which the maps' backward passes add into the tokens' gradient is not."""
        tokens, layers = self.compound_rep_tokens, range(len(self.rep_layers))
        if interleaved:
            pairs = [(self.to_text(tokens, i).type(self.dtype), self.to_vision(tokens, i).type(self.dtype))
                     for i in layers]
            return [text for text, _ in pairs], [vision for _, vision in pairs]
        text = [self.to_text(tokens, i).type(self.dtype) for i in layers]
        vision = [self.to_vision(tokens, i).type(self.dtype) for i in layers]
        return text, vision


def encode_image_with_tokens(visual, images, rep_layers, tokens, rep_projection, blend=None):
    """The stock ViT with the representation tokens after the class token (positions 1..n) from the first layer of
    ``rep_layers`` on: (class-token features, representation features), each (B, E)."""
    x = visual.conv1(images)
    x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)
    cls = visual.class_embedding.to(x.dtype) + torch.zeros(x.shape[0], 1, x.shape[-1], dtype=x.dtype, device=x.device)
    x = torch.cat([cls, x], dim=1) + visual.positional_embedding.to(x.dtype)
    x = visual.ln_pre(x).permute(1, 0, 2)
    n = tokens[0].shape[0]
    for depth, block in enumerate(visual.transformer.resblocks):
        layer = depth + 1
        if layer in rep_layers:
            index = rep_layers.index(layer)
            copies = tokens[index].expand(x.shape[1], -1, -1).permute(1, 0, 2)
            if index == 0:
                x = torch.cat([x[:1], copies, x[1:]], dim=0)
            else:
                if blend is not None:
                    copies = blend * copies + (1 - blend) * x[1:1 + n]
                x = torch.cat([x[:1], copies, x[1 + n:]], dim=0)
        x = block(x)
    x = x.permute(1, 0, 2)
    rep = visual.ln_post(x[:, 1:1 + n, :]).mean(dim=1)
    rep = rep @ rep_projection.type(rep.dtype)
    return visual.ln_post(x[:, 0, :]) @ visual.proj, rep


class RepresentationCLIP(HostModel):
    """The host over a ``RepresentationLearner``; ``blend`` is MMRL++'s BETA (None: MMRL's plain replacement)."""

    checkpoint_name = "MultiModalRepresentationLearner"
    overridable_settings = ("PREC", "ALPHA", "REG_WEIGHT")  # they weigh the logits and the loss, not the tokens
    image_encoder_prompted = True

    def __init__(self, learner, clip_model, classnames, template, alpha, reg_weight, branch, blend=None):
        super().__init__(clip_model)
        self.prompt_learner = learner
        self.alpha, self.reg_weight, self.test_branch, self.blend = alpha, reg_weight, branch, blend
        self.texts = class_texts(template, classnames)
        self.token_embedding = clip_model.token_embedding  # frozen; kept for the zero-shot text targets
        tokenized = tokenize(self.texts)
        embedding = embed_tokens(clip_model, tokenized)
        # Class-dependent, rebuilt from the class names, never saved.
        self.register_buffer("tokenized_prompts", tokenized.to(embedding.device), persistent=False)
        self.register_buffer("prompt_embeddings", embedding, persistent=False)
        self.register_buffer("_text_targets", None, persistent=False)

    @classmethod
    def node_and_branch(cls, cfg):
        return getattr(cfg.TRAINER, cls.config_node), branch_for(cfg)

    @staticmethod
    def template(cfg):
        return dataset_template(cfg.DATASET.NAME)

    # ---- the three steps -----------------------------------------------------------------------------

    def encode_image(self, images):
        return self.image_features_with(self.prompt_learner.layer_tokens()[1], images)

    def encode_text(self, class_idx=None, image_features=None):
        return self.text_features_with(self.prompt_learner.layer_tokens()[0], class_idx)

    def image_features_with(self, vision, images):
        learner, visual = self.prompt_learner, self.image_encoder.visual
        features, rep = encode_image_with_tokens(visual, images.type(self.dtype), learner.rep_layers, vision,
                                                 learner.rep_projection(visual.proj), self.blend)
        return torch.stack([features, rep], dim=1)

    def text_features_with(self, text, class_idx=None):
        learner = self.prompt_learner
        embeddings, tokens = self.prompt_embeddings, self.tokenized_prompts
        if class_idx is not None:
            embeddings, tokens = embeddings[class_idx], tokens[class_idx]
        deep = [text[learner.rep_layers.index(layer)] if layer in learner.rep_layers else None
                for layer in range(learner.rep_layers[0], learner.rep_layers[-1] + 1)]
        return self.text_encoder(embeddings, eot_indices(tokens), deep, first_block=learner.rep_layers[0] - 1,
                                 insert_first=True, blend=self.blend)

    def branch_logits(self, image_features, text_features):
        """(class-token logits, representation logits, normalised class-token image features, normalised text)."""
        image = image_features[:, 0] / image_features[:, 0].norm(dim=-1, keepdim=True)
        rep = image_features[:, 1] / image_features[:, 1].norm(dim=-1, keepdim=True)
        text = text_features / text_features.norm(dim=-1, keepdim=True)
        return LOGIT_SCALE * image @ text.t(), LOGIT_SCALE * rep @ text.t(), image, text

    def fuse(self, logits, rep_logits):
        return self.alpha * logits + (1 - self.alpha) * rep_logits

    def head(self, image_features, text_features):
        """Fused logits while the prompts train; at test time the branch of the reference's rule."""
        logits, rep_logits, _, _ = self.branch_logits(image_features, text_features)
        if self.prompt_learner.training or self.test_branch == FUSED:
            return self.fuse(logits, rep_logits)
        return logits

    # ---- the loss ------------------------------------------------------------------------------------

    @property
    def text_targets(self):
        """(n_cls, E), normalised: frozen CLIP's features of the template prompts, in the host's precision."""
        if self._text_targets is None:
            targets = encode_texts(self.text_encoder, self.token_embedding, self.texts)
            self._text_targets = targets / targets.norm(dim=-1, keepdim=True)
        return self._text_targets

    def loss(self, images, labels):
        if self.reference_parity:  # the reference's step: the maps once, layer by layer, shared; text tower first
            text_tokens, vision_tokens = self.prompt_learner.layer_tokens(interleaved=True)
            text_features = self.text_features_with(text_tokens)
            image_features = self.image_features_with(vision_tokens, images)
        else:
            image_features, text_features = self.encode_image(images), self.encode_text()
        with torch.no_grad():
            zs_image = self.image_encoder(images)
            zs_image = zs_image / zs_image.norm(dim=-1, keepdim=True)
        logits, rep_logits, image, text = self.branch_logits(image_features, text_features)
        terms = {
            "ce": F.cross_entropy(logits, labels),
            "ce_rep": F.cross_entropy(rep_logits, labels),
            "reg_image": 1 - torch.mean(F.cosine_similarity(image, zs_image, dim=1)),
            "reg_text": 1 - torch.mean(F.cosine_similarity(text, self.text_targets, dim=1)),
        }
        total = (self.alpha * terms["ce"] + (1 - self.alpha) * terms["ce_rep"]
                 + self.reg_weight * terms["reg_image"] + self.reg_weight * terms["reg_text"])
        return HostLoss(total, self.fuse(logits, rep_logits), terms)

    # ---- reference checkpoints -----------------------------------------------------------------------

    reference_image_keys = {}  # the reference's image_encoder.<key> of learned tensors -> our learner's name

    @classmethod
    def adapt_state_dict(cls, state_dict):
        """A reference checkpoint holds the whole CustomCLIP: keep ``representation_learner.*`` and the learned
        image-encoder tensors; frozen CLIP weights and the template embeddings are left out."""
        if not any(key.startswith(REFERENCE_LEARNER_PREFIX) for key in state_dict):
            return state_dict
        ours = {}
        for key, value in state_dict.items():
            if key.startswith(REFERENCE_LEARNER_PREFIX):
                ours[key[len(REFERENCE_LEARNER_PREFIX):]] = value
            elif key.startswith("image_encoder.") and key[len("image_encoder."):] in cls.reference_image_keys:
                ours[cls.reference_image_keys[key[len("image_encoder."):]]] = value
        print(f"Reference checkpoint layout: kept {len(ours)} learned tensors of {len(state_dict)} entries")
        return ours


def widths(clip_model):
    """(text width, vision width, the image features' width)."""
    return text_width(clip_model), vision_width(clip_model), clip_model.visual.proj.shape[1]

"""PromptSRC (Khattak et al., ICCV 2023): IVLP's prompts, regularised towards frozen CLIP.

- Architecture and checkpoint keys as IVLP (``vl_prompts.IndependentVLCLIP``), checkpointed as ``VLPromptLearner``.
- Loss = CE + (KL(zero-shot || prompted) + 25 * L1(text) + 10 * L1(image)), with the reference's reductions.
- Text targets: per class, the mean of frozen CLIP's raw text features over 60 templates, from an fp32 text
  tower (as the reference), computed on first use (an evaluation never needs them).
- Zero-shot image targets: the stock (unprompted) image tower; the reference keeps a second copy with the same
  weights, fp16 whatever PREC says (which breaks its fp32 mode); here it runs in the host's precision.
- Gaussian prompt aggregation over epochs: ``gpa.py`` (prompts only; see there how that differs).
"""
import torch
import torch.nn.functional as F

from trainers.engine import TRAINER_REGISTRY
from trainers.engine.config import config_extension, new_node
from trainers.host_api.host_trainer import HostTrainer
from trainers.host_api.interface import HostLoss
from trainers.hosts.parts.gpa import GaussianPromptAggregation
from trainers.hosts.parts.reference_order import normalised_once
from trainers.hosts.parts.text_targets import template_mean_features
from trainers.hosts.parts.vl_prompts import IndependentVLCLIP
from trainers.prompted_clip.templates import PROMPTSRC_TEMPLATES


@config_extension
def add_promptsrc_config(cfg):
    cfg.TRAINER.PROMPTSRC = new_node(
        N_CTX_VISION=4, N_CTX_TEXT=4, CTX_INIT="a photo of a", PREC="fp16",
        PROMPT_DEPTH_VISION=9, PROMPT_DEPTH_TEXT=9,
        TEXT_LOSS_WEIGHT=25, IMAGE_LOSS_WEIGHT=10, GPA_MEAN=15, GPA_STD=1,
        ROUND_PROMPTS_FP16=False,  # ours: round inserted prompts through fp16 as the reference does under fp32/amp
    )


def promptsrc_losses(logits, labels, text_features, text_targets, image_features, zs_image_features, zs_logits,
                     text_weight, image_weight):
    """The four terms of the loss. Features are normalised; ``text_targets`` fp32 (so the text term is fp32)."""
    ce = F.cross_entropy(logits, labels)
    text = F.l1_loss(text_features, text_targets, reduction="mean") * text_weight
    image = F.l1_loss(image_features, zs_image_features, reduction="mean") * image_weight
    # KL(p_zs || p) summed over every element, divided by B * n_cls (neither 'batchmean' nor per-sample).
    kl = F.kl_div(F.log_softmax(logits, dim=1), F.log_softmax(zs_logits, dim=1), reduction="sum",
                  log_target=True) / logits.numel()
    return {"ce": ce, "kl": kl, "text": text, "image": image}


def promptsrc_total(terms):
    """The reference's order of summation: ce + (kl + text + image)."""
    return terms["ce"] + (terms["kl"] + terms["text"] + terms["image"])


class PromptSRCCLIP(IndependentVLCLIP):
    config_node = "PROMPTSRC"
    # The loss weights and GPA change how it trains, not what its prompts are.
    overridable_settings = IndependentVLCLIP.overridable_settings + (
        "TEXT_LOSS_WEIGHT", "IMAGE_LOSS_WEIGHT", "GPA_MEAN", "GPA_STD")

    def __init__(self, node, classnames, clip_model):
        super().__init__(node, classnames, clip_model)
        self.token_embedding = clip_model.token_embedding  # frozen; kept to build the text targets on demand
        self.classnames = list(classnames)
        self.text_weight, self.image_weight = node.TEXT_LOSS_WEIGHT, node.IMAGE_LOSS_WEIGHT
        self.register_buffer("_text_targets", None, persistent=False)

    @property
    def text_targets(self):
        """(n_cls, E) fp32, not normalised: the 60-template mean of frozen CLIP's text features."""
        if self._text_targets is None:
            self._text_targets = template_mean_features(self.text_encoder, self.token_embedding, self.classnames,
                                                        PROMPTSRC_TEMPLATES, fp32=True)
        return self._text_targets

    def loss(self, images, labels):
        image_features, text_features = self.encode_image(images), self.encode_text()
        if self.reference_parity:  # the reference's one normalisation per tower, shared by logits and L1 terms
            logits, image_unit, text_unit = normalised_once(self, image_features, text_features)
        else:
            logits = self.head(image_features, text_features)
            image_unit, text_unit = F.normalize(image_features, dim=-1), F.normalize(text_features, dim=-1)
        targets = self.text_targets
        targets = targets / targets.norm(dim=-1, keepdim=True)
        with torch.no_grad():
            zs_image = F.normalize(self.image_encoder(images), dim=-1)
            zs_logits = self.logit_scale.exp() * zs_image @ targets.to(zs_image.dtype).t()
        terms = promptsrc_losses(logits, labels, text_unit, targets, image_unit, zs_image, zs_logits,
                                 self.text_weight, self.image_weight)
        return HostLoss(promptsrc_total(terms), logits, terms)


@TRAINER_REGISTRY.register()
class PromptSRC(HostTrainer):
    model_class = PromptSRCCLIP
    paper_configs = {"base2new": "vit_b16_c2_ep20_batch4_4+4ctx",
                     "cross": "vit_b16_c2_ep20_batch4_4+4ctx_cross_datasets",
                     "few_shot": "vit_b16_c2_ep50_batch4_4+4ctx_few_shot"}

    def build_model(self):
        super().build_model()
        node = self.trainer_cfg
        self.gpa = GaussianPromptAggregation(node.GPA_MEAN, node.GPA_STD, self.cfg.OPTIM.MAX_EPOCH)

    def after_last_batch(self):
        self.gpa.add(self.epoch, [(n, p) for n, p in self.model.prompt_learner.named_parameters() if p.requires_grad])
        if self.epoch + 1 == self.cfg.OPTIM.MAX_EPOCH:
            self.gpa.load_into(self.model.prompt_learner)
            print("Loaded the Gaussian-aggregated prompts (GPA) into the model")

    def checkpoint_extra(self, name):
        extra = super().checkpoint_extra(name)
        if getattr(self, "gpa", None) is not None:
            extra["gpa"] = self.gpa.state_dict()
        return extra

    def restore_checkpoint_extra(self, name, checkpoint):
        if "gpa" in checkpoint:
            self.gpa.load_state_dict(checkpoint["gpa"], self.device)
            print(f"Restored the GPA aggregate of epochs 1..{self.gpa.epochs_added}")
        else:
            print("The checkpoint holds no GPA aggregate: epochs before the resume point are not aggregated")

"""PromptKD (Li et al., CVPR 2024): a student CLIP distilled from a frozen prompted teacher on unlabeled images.

- Teacher (``promptkd_teacher.py``): a PromptSRC run on a larger CLIP (ViT-L/14), frozen. Its text features are
  the class weights of both models; they do not change, so they are computed once per run (and again only when
  its prompt tensors change, which happens only when DPC swaps other values in).
- Student (``prompt_learner``): IVLP's vision prompts on the student's image tower (``vision_ctx``,
  ``deep_vision.k``) and a two-layer projector from the student's embedding to the teacher's, Linear ->
  BatchNorm -> ReLU -> Linear (the reference's 1x1 convolutions on a 1x1 map compute the same). The student's
  text tower is never used.
- Logits: the host's three steps, ``head(encode_image, encode_text)``: CLIP's scaled cosine of the projected
  student features against the teacher's text features.
- Loss: ``KD_WEIGHT * T^2 * sum(p_t * (log p_t - log q_s)) / (B * C)`` with ``p_t``, ``q_s`` the softmaxes of teacher
  and student logits at temperature T (``kd_loss``); labels are not used.
- Data (``promptkd_data.py``): base-to-new trains on the unlabeled training images of all classes and evaluates
  on the base classes.
- DPC: the prompt set spans both models: the student's prompts and projector (its BatchNorm statistics included)
  and the teacher's text prompts; the teacher ranks DPC's hard negatives (``negative_scores``).
"""
import re

import torch
import torch.nn.functional as F
from torch import nn

from trainers.engine import TRAINER_REGISTRY
from trainers.engine.config import config_extension, new_node
from trainers.host_api.host_trainer import HostTrainer
from trainers.host_api.interface import PROMPT_LEARNER, HostLoss, HostModel
from trainers.hosts.parts.promptkd_data import UnlabeledAllClassData
from trainers.hosts.parts.promptkd_teacher import load_teacher
from trainers.hosts.parts.vl_prompts import check_depth, normal_prompts, num_layers, require_vit, vision_width


@config_extension
def add_promptkd_config(cfg):
    cfg.TRAINER.MODAL = "base2novel"  # the reference's key: base2novel | cross
    cfg.TRAINER.PROMPTKD = new_node(
        N_CTX_VISION=4, PROMPT_DEPTH_VISION=9,  # the student's vision prompts
        N_CTX_TEXT=4, PROMPT_DEPTH_TEXT=9,  # the reference's keys; the teacher's shapes come from its checkpoint
        CTX_INIT="a photo of a",  # the teacher's prompt template, where its checkpoint does not record one
        PREC="fp16",
        KD_WEIGHT=1.0, TEMPERATURE=1.0,
        CE_WEIGHT=0.0, PROJECT_LAYER=2,  # accepted as in the reference, which does not use them either
        TEACHER_NAME="ViT-L/14",  # the teacher's backbone (a name or a .pt path); "" = what the teacher run records
        TEACHER_DIR="",  # the teacher run: see trainers/hosts/parts/promptkd_teacher.py
        UNLABELED_SHOTS=-1,  # base-to-new: images per class of the all-class training set; -1 = all (reference)
        ROUND_PROMPTS_FP16=False,  # ours: round inserted prompts through fp16 as the reference does under fp32/amp
    )


def kd_loss(student_logits, teacher_logits, temperature):
    """KL(teacher || student) at ``temperature``, summed over every element and divided by B * C, times T^2: the
    reference's reduction (neither 'batchmean' nor a per-sample mean). Computed in fp32."""
    log_q = F.log_softmax(student_logits.float() / temperature, dim=1)
    p = F.softmax(teacher_logits.float() / temperature, dim=1)
    return F.kl_div(log_q, p, reduction="sum") * temperature * temperature / student_logits.numel()


class StudentPromptLearner(nn.Module):
    """The student's prompts: ``vision_ctx`` (appended after the patches), ``deep_vision.k`` (layer k+1), both fp32,
    and ``projector`` = Linear(E_student, E_teacher), BatchNorm1d, ReLU, Linear(E_teacher, E_teacher); its linear
    layers are in CLIP's dtype, its BatchNorm in fp32 (as the reference's ``convert_weights`` leaves it)."""

    def __init__(self, clip_model, n_ctx_vision, depth_vision, teacher_dim):
        super().__init__()
        device = clip_model.logit_scale.device
        if depth_vision > 0 and n_ctx_vision > 0:
            require_vit(clip_model, "PromptKD")
            check_depth("PROMPT_DEPTH_VISION", depth_vision, 0, num_layers(clip_model.visual.transformer))
            self.vision_ctx = nn.Parameter(
                torch.empty(n_ctx_vision, vision_width(clip_model), device=device).normal_(std=0.02))
            self.deep_vision = normal_prompts(depth_vision - 1, n_ctx_vision, vision_width(clip_model), device)
        else:
            self.register_parameter("vision_ctx", None)
            self.deep_vision = nn.ParameterList()
        student_dim = clip_model.visual.output_dim
        self.projector = nn.Sequential(nn.Linear(student_dim, teacher_dim), nn.BatchNorm1d(teacher_dim), nn.ReLU(),
                                       nn.Linear(teacher_dim, teacher_dim)).to(device)
        self.projector[0].to(clip_model.dtype)
        self.projector[3].to(clip_model.dtype)
        print(f"Student: {n_ctx_vision} vision prompt tokens, depth {depth_vision}; projector {student_dim} -> "
              f"{teacher_dim}")

    def vision_prompts(self):
        return self.vision_ctx, list(self.deep_vision)

    def project(self, features):
        first, norm, relu, second = self.projector
        x = first(features.to(first.weight.dtype))
        x = norm(x.float()).to(x.dtype)
        return second(relu(x))


class PromptKDCLIP(HostModel):
    """The student, holding the frozen teacher (``teacher``, outside the prompt learner)."""

    config_node = "PROMPTKD"
    checkpoint_name = "VLPromptLearner"
    overridable_settings = ("PREC", "ROUND_PROMPTS_FP16", "KD_WEIGHT", "TEMPERATURE", "CE_WEIGHT", "PROJECT_LAYER",
                            "UNLABELED_SHOTS")

    def __init__(self, node, classnames, clip_model, teacher):
        super().__init__(clip_model)
        self.teacher = teacher
        self.prompt_learner = StudentPromptLearner(clip_model, node.N_CTX_VISION, node.PROMPT_DEPTH_VISION,
                                                   teacher.embed_dim)
        self.kd_weight, self.temperature = node.KD_WEIGHT, node.TEMPERATURE
        self.round_prompts_fp16 = node.ROUND_PROMPTS_FP16
        self.image_encoder_prompted = self.prompt_learner.vision_ctx is not None
        self._text_cache = None

    @classmethod
    def from_config(cls, cfg, classnames, clip_model):
        node = cfg.TRAINER.PROMPTKD
        teacher = load_teacher(node, cfg.DATASET.NAME, classnames, clip_model.logit_scale.device,
                               fp32=clip_model.dtype != torch.float16, cache_dir=cfg.MODEL.BACKBONE.CACHE_DIR,
                               round_prompts_fp16=node.ROUND_PROMPTS_FP16)
        return cls(node, classnames, clip_model, teacher)

    # ---- the three steps -----------------------------------------------------------------------------------

    def encode_image(self, images):
        first, deep = self.prompt_learner.vision_prompts()
        if first is None:
            features = self.image_encoder(images)
        else:
            features = self.image_encoder(images, first, deep, round_fp16=self.round_prompts_fp16)
        return self.prompt_learner.project(features)

    def encode_text(self, class_idx=None, image_features=None):
        """The teacher's text features; with trainable values swapped in (DPC's P'), through its frozen tower."""
        prompts = self.teacher_text_prompts()
        if torch.is_grad_enabled() and any(p.requires_grad for p in prompts):
            return self.teacher.encode_text(class_idx)
        features = self._teacher_text_features(prompts)
        return features if class_idx is None else features[class_idx]

    def teacher_text_prompts(self):
        learner = self.teacher.prompt_learner
        return [learner.ctx, *learner.deep_text_prompts()]

    def _teacher_text_features(self, prompts):
        """All classes' teacher text features, computed once for these prompt tensors (as long as they do not change
        in place and stay on their device)."""
        key = [(p, p._version) for p in prompts]
        cache = self._text_cache
        if (cache is None or len(cache[0]) != len(key) or cache[1].device != prompts[0].device
                or any(a is not b or va != vb for (a, va), (b, vb) in zip(cache[0], key))):
            with torch.no_grad():
                cache = self._text_cache = (key, self.teacher.encode_text())
        return cache[1]

    # ---- training and DPC ----------------------------------------------------------------------------------

    @torch.no_grad()
    def teacher_logits(self, images, text_features=None):
        text_features = self.encode_text() if text_features is None else text_features
        return self.teacher.head(self.teacher.encode_image(images), text_features)

    def loss(self, images, labels):
        text_features = self.encode_text()
        logits = self.head(self.encode_image(images), text_features)
        kd = kd_loss(logits, self.teacher_logits(images, text_features), self.temperature)
        return HostLoss(self.kd_weight * kd, logits, {"kd": kd})

    def negative_scores(self, images):
        """The teacher's logits over the current classes (DPC trains on the base classes, so: base classes only)."""
        with torch.no_grad():
            return self.teacher_logits(images)

    def dpc_prompt_names(self):
        """The student's prompts and projector, its BatchNorm's running statistics, and the teacher's text prompts
        (DPC trains clones of those; the teacher itself stays frozen)."""
        stats = [f"{PROMPT_LEARNER}.{name}" for name, buf in self.prompt_learner.named_buffers()
                 if buf.is_floating_point()]
        deep_text = range(len(self.teacher.prompt_learner.deep_text))
        teacher = ["teacher.prompt_learner.ctx", *(f"teacher.prompt_learner.deep_text.{k}" for k in deep_text)]
        return self.prompt_parameter_names() + stats + teacher

    @property
    def reference_parity(self):
        return self.image_encoder.reference_parity

    @reference_parity.setter
    def reference_parity(self, enabled):
        self.text_encoder.reference_parity = self.image_encoder.reference_parity = bool(enabled)
        self.teacher.reference_parity = enabled

    # ---- checkpoints ---------------------------------------------------------------------------------------

    @classmethod
    def adapt_state_dict(cls, state_dict):
        """A reference PromptKD student checkpoint (the whole student CustomCLIP) under our names: its vision
        prompts, and ``VPT_image_trans.conv1.{0,1,3}`` (1x1 convolutions and the BatchNorm) as the projector."""
        if not any(key.startswith(("image_encoder.", "VPT_image_trans.")) for key in state_dict):
            return state_dict
        ours = {}
        for key, value in state_dict.items():
            deep = _DEEP_VISION.fullmatch(key)
            projector = _PROJECTOR.fullmatch(key)
            if key == "image_encoder.VPT":
                ours["vision_ctx"] = value
            elif deep:
                ours[f"deep_vision.{int(deep.group(1)) - 1}"] = value
            elif projector:
                ours[f"projector.{projector.group(1)}"] = value.flatten(1) if value.dim() == 4 else value
        print(f"Reference PromptKD checkpoint layout: kept {len(ours)} tensors of {len(state_dict)} entries")
        return ours


_DEEP_VISION = re.compile(r"image_encoder\.transformer\.resblocks\.(\d+)\.VPT_shallow")
_PROJECTOR = re.compile(r"VPT_image_trans\.conv1\.(\d\.\w+)")


@TRAINER_REGISTRY.register()
class PromptKD(UnlabeledAllClassData, HostTrainer):
    model_class = PromptKDCLIP
    # KD_WEIGHT 1000, 200 for three datasets (the reference's scripts)
    paper_configs = {"base2new": "vit_b16_c2_ep20_batch8_4+4ctx",
                     "cross": "vit_b16_c2_ep20_batch8_4+4ctx_cross_datasets",
                     "per_dataset": {name: "vit_b16_c2_ep20_batch8_4+4ctx_kd200"
                                     for name in ("fgvc_aircraft", "oxford_flowers", "dtd")}}
    # The run its teacher comes from (trained first by the pipeline, tools/pipeline/plan.py): trainer and config.
    teacher_run = ("PromptSRC", "vit_l14_c2_ep20_batch8_4+4ctx")
    teacher_dir_key = "TRAINER.PROMPTKD.TEACHER_DIR"

    def build_model(self):
        super().build_model()
        # The student is made from its teacher run, as DPC from its stage 1: results and checkpoints record it,
        # so a resume refuses a checkpoint distilled from another teacher and the pipeline redoes a stale student.
        self.built_on = self.model.teacher.run_id

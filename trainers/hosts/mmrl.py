"""MMRL, multi-modal representation learning (Guo and Gu, CVPR 2025), on the stock CLIP towers.

The model is ``representation_tokens.py``'s; MMRL's own part is the map per layer of REP_LAYERS: a linear layer
REP_DIM -> width per tower (``compound_rep_tokens_r2tproj.i``, ``compound_rep_tokens_r2vproj.i``; the reference
deep-copies one initialised layer, so they start identical), and a learned projection ``proj_rep`` (vision width x
E, init N(0, width^-1/2) as there) for the representation features. Checkpointed as the reference's
``MultiModalRepresentationLearner``.

Precision as the reference: the tokens and the per-layer maps are in the CLIP dtype, ``proj_rep`` is fp32 and
cast where it is used. Per-dataset settings (the reference sets them in code): ``configs/trainers/MMRL/
dataset_settings.yaml``, applied before the command line's options (``trainers/dataset_settings.py``).
"""
import copy

import torch
from torch import nn

from trainers.engine import TRAINER_REGISTRY
from trainers.engine.config import config_extension, new_node
from trainers.host_api.host_trainer import HostTrainer
from trainers.hosts.parts.representation_tokens import (
    RepresentationCLIP,
    RepresentationLearner,
    check_rep_layers,
    widths,
)


@config_extension
def add_mmrl_config(cfg):
    cfg.TRAINER.MMRL = new_node(
        ALPHA=0.7,  # weight of the class-token logits in the fused logits and in the loss
        REG_WEIGHT=1.0,  # weight of each cosine regulariser towards frozen CLIP
        N_REP_TOKENS=5, REP_DIM=512,
        REP_LAYERS=[],  # 1-based layers that get representation tokens; the configs give [6, ..., 12]
        PREC="fp16",
    )


def identical_copies(layer, count):
    return nn.ModuleList(copy.deepcopy(layer) for _ in range(count))


class MMRLRepresentationLearner(RepresentationLearner):
    def __init__(self, clip_model, n_tokens, rep_dim, rep_layers):
        super().__init__(clip_model, n_tokens, rep_dim, rep_layers)
        width_t, width_v, embed = widths(clip_model)
        device = clip_model.token_embedding.weight.device
        self.compound_rep_tokens_r2vproj = identical_copies(nn.Linear(rep_dim, width_v), len(rep_layers))
        self.compound_rep_tokens_r2tproj = identical_copies(nn.Linear(rep_dim, width_t), len(rep_layers))
        self.to(device=device, dtype=clip_model.dtype)
        self.proj_rep = nn.Parameter(width_v ** -0.5 * torch.randn(width_v, embed, device=device))
        print(f"MMRL: {n_tokens} representation tokens of width {rep_dim} in layers {list(rep_layers)}")

    def to_text(self, tokens, index):
        return self.compound_rep_tokens_r2tproj[index](tokens)

    def to_vision(self, tokens, index):
        return self.compound_rep_tokens_r2vproj[index](tokens)

    def rep_projection(self, proj):
        return self.proj_rep


# The configs of MMRL's scripts, per benchmark (MMRL++'s have the same names)
PAPER_CONFIGS = {"base2new": "vit_b16", "cross": "vit_b16_cross_datasets", "few_shot": "vit_b16_few_shot",
                 "per_dataset": {"imagenet": "vit_b16_imagenet"},
                 "few_shot_per_dataset": {"imagenet": "vit_b16_imagenet"}}


class MMRLCLIP(RepresentationCLIP):
    config_node = "MMRL"
    reference_image_keys = {"proj_rep": "proj_rep"}

    @classmethod
    def from_config(cls, cfg, classnames, clip_model):
        node, branch = cls.node_and_branch(cfg)
        layers = check_rep_layers("TRAINER.MMRL.REP_LAYERS", node.REP_LAYERS, clip_model)
        learner = MMRLRepresentationLearner(clip_model, node.N_REP_TOKENS, node.REP_DIM, layers)
        return cls(learner, clip_model, classnames, cls.template(cfg), node.ALPHA, node.REG_WEIGHT, branch)


@TRAINER_REGISTRY.register()
class MMRL(HostTrainer):
    model_class = MMRLCLIP
    paper_configs = PAPER_CONFIGS
    dataset_settings = True
    # Its scripts: cross-dataset and DG runs are TASK CD, with REG_WEIGHT 0.2 and REP_DIM 512 over the per-dataset
    # settings (EuroSAT's REP_DIM 2048 must not reach a model trained on ImageNet); few-shot runs are TASK FS.
    protocol_opts = {"cross-dataset": ["TASK", "CD", "TRAINER.MMRL.REG_WEIGHT", 0.2, "TRAINER.MMRL.REP_DIM", 512],
                     "dg": ["TASK", "CD", "TRAINER.MMRL.REG_WEIGHT", 0.2, "TRAINER.MMRL.REP_DIM", 512],
                     "few-shot": ["TASK", "FS"]}

"""MMRL++ (Guo and Gu, arXiv 2505.10088): MMRL with shared, low-rank per-layer maps and tokens that carry over.

The model is ``representation_tokens.py``'s, with three changes:
- the per-layer maps share one weight per tower (``srra_r2tproj.weight``, ``srra_r2vproj.weight``) and add a
  rank-RES_LORA_DIM residual and a bias of their own per layer: ``W + A_i @ B_i`` (A_i Kaiming-uniform, B_i zero,
  the bias starting as the shared layer's), so every layer starts from the same map;
- at every layer after the first of REP_LAYERS, the tokens become BETA * the layer's tokens + (1 - BETA) * what
  the previous block made of them, in both towers;
- the representation features' projection is CLIP's frozen ``proj`` plus a learned rank-PROJ_LORA_DIM term
  ``proj_rep_A @ proj_rep_B`` (the reference's ``image_encoder.A`` and ``image_encoder.B``; B starts at zero).

Precision as the reference: the tokens and the maps are in the CLIP dtype; ``proj_rep_A`` and ``proj_rep_B`` are
fp32, and the projection is cast to the activations' dtype where it is used (the reference multiplies fp16
activations by it in fp32, which fails under PREC fp16). Per-dataset settings: ``configs/trainers/MMRLpp/
dataset_settings.yaml`` (its cross-dataset table differs from the base-to-new one).
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

from trainers.engine import TRAINER_REGISTRY
from trainers.engine.config import config_extension, new_node
from trainers.host_api.host_trainer import HostTrainer
from trainers.hosts.mmrl import PAPER_CONFIGS
from trainers.hosts.parts.representation_tokens import (
    RepresentationCLIP,
    RepresentationLearner,
    check_rep_layers,
    widths,
)


@config_extension
def add_mmrlpp_config(cfg):
    cfg.TRAINER.MMRLpp = new_node(
        ALPHA=0.7,  # weight of the class-token logits in the fused logits and in the loss
        BETA=0.9,  # weight of a layer's own tokens against those carried over from the previous block
        REG_WEIGHT=1.0,
        N_REP_TOKENS=5, REP_DIM=512,
        REP_LAYERS=[],  # 1-based layers that get representation tokens; the configs give [6, ..., 12]
        PROJ_LORA_DIM=64,  # rank of the learned term of the representation features' projection
        RES_LORA_DIM=4,  # rank of each layer's residual on the shared map
        PREC="fp16",
    )


def kaiming_uniform(rows, cols, device):
    tensor = torch.empty(rows, cols, device=device)
    nn.init.kaiming_uniform_(tensor, a=math.sqrt(5))
    return tensor


class LayerResidual(nn.Module):
    """One layer's low-rank residual ``A @ B`` on the shared weight, and its own bias."""

    def __init__(self, out_features, in_features, rank, bias, device):
        super().__init__()
        self.A = nn.Parameter(kaiming_uniform(out_features, rank, device))
        self.B = nn.Parameter(torch.zeros(rank, in_features, device=device))
        self.bias = nn.Parameter(bias.detach().clone())


class SharedResidualMap(nn.Module):
    """``x -> x @ (W + A_i @ B_i)^T + b_i`` for layer i, W shared by all layers."""

    def __init__(self, in_features, out_features, layers, rank, device):
        super().__init__()
        shared = nn.Linear(in_features, out_features).to(device)
        self.weight = nn.Parameter(shared.weight.detach().clone())
        self.srra = nn.ModuleList(LayerResidual(out_features, in_features, rank, shared.bias, device)
                                  for _ in range(layers))

    def forward(self, x, index):
        layer = self.srra[index]
        return F.linear(x, self.weight + layer.A @ layer.B, layer.bias)


class MMRLppRepresentationLearner(RepresentationLearner):
    def __init__(self, clip_model, n_tokens, rep_dim, rep_layers, res_rank, proj_rank):
        super().__init__(clip_model, n_tokens, rep_dim, rep_layers)
        width_t, width_v, embed = widths(clip_model)
        device = clip_model.token_embedding.weight.device
        self.srra_r2vproj = SharedResidualMap(rep_dim, width_v, len(rep_layers), res_rank, device)
        self.srra_r2tproj = SharedResidualMap(rep_dim, width_t, len(rep_layers), res_rank, device)
        self.to(dtype=clip_model.dtype)
        self.proj_rep_A = nn.Parameter(kaiming_uniform(width_v, proj_rank, device))
        self.proj_rep_B = nn.Parameter(torch.zeros(proj_rank, embed, device=device))
        print(f"MMRL++: {n_tokens} representation tokens of width {rep_dim} in layers {list(rep_layers)}")

    def to_text(self, tokens, index):
        return self.srra_r2tproj(tokens, index)

    def to_vision(self, tokens, index):
        return self.srra_r2vproj(tokens, index)

    def rep_projection(self, proj):
        return proj + self.proj_rep_A @ self.proj_rep_B


class MMRLppCLIP(RepresentationCLIP):
    config_node = "MMRLpp"
    overridable_settings = RepresentationCLIP.overridable_settings + ("BETA",)
    reference_image_keys = {"A": "proj_rep_A", "B": "proj_rep_B"}

    @classmethod
    def from_config(cls, cfg, classnames, clip_model):
        node, branch = cls.node_and_branch(cfg)
        layers = check_rep_layers("TRAINER.MMRLpp.REP_LAYERS", node.REP_LAYERS, clip_model)
        learner = MMRLppRepresentationLearner(clip_model, node.N_REP_TOKENS, node.REP_DIM, layers,
                                              node.RES_LORA_DIM, node.PROJ_LORA_DIM)
        return cls(learner, clip_model, classnames, cls.template(cfg), node.ALPHA, node.REG_WEIGHT, branch,
                   blend=node.BETA)


@TRAINER_REGISTRY.register()
class MMRLpp(HostTrainer):
    model_class = MMRLppCLIP
    paper_configs = PAPER_CONFIGS
    dataset_settings = True
    protocol_opts = {"cross-dataset": ["TASK", "CD"], "dg": ["TASK", "CD"], "few-shot": ["TASK", "FS"]}  # its scripts

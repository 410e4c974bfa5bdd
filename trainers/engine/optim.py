"""``build_optimizer`` and ``build_lr_scheduler`` with Dassl's names, config keys and LR sequence.

Owned by the project under both runtimes: Dassl's warm-up scheduler pickles its successor scheduler into every
checkpoint (refused by ``torch.load(weights_only=True)``, the default from torch 2.6), restores that successor
tied to a copy of the optimiser (the LR freezes after a resume), and cannot be built on torch >= 2.7. Ours is one
``LambdaLR`` whose state is plain numbers, so resume restores the exact LR sequence.

The scheduler is stepped once per epoch. With a warm-up of W epochs the LR of (0-based) epoch e is the
warm-up LR for e < W and the successor's LR at step e - W afterwards, as in Dassl with ``WARMUP_RECOUNT``
(its default, and what every config of the CoOp family uses). With ``WARMUP_RECOUNT False`` the successor's
LR is taken at step e, its closed form; Dassl's chained schedulers drift from that form in that mode.
Dassl's ``radam`` and ``STAGED_LR`` are not offered (no config of the CoOp family uses them).
"""
import math
from bisect import bisect_right

import torch

OPTIMIZERS = ("adam", "amsgrad", "sgd", "rmsprop", "adamw")
SCHEDULERS = ("single_step", "multi_step", "cosine")


def build_optimizer(model, optim_cfg, param_groups=None):
    name = optim_cfg.NAME
    if name not in OPTIMIZERS:
        raise ValueError(f"OPTIM.NAME must be one of {OPTIMIZERS}, got {name!r}")
    if optim_cfg.get("STAGED_LR", False):
        raise ValueError("OPTIM.STAGED_LR is not supported: prompt learners train one group of tensors")
    if param_groups is None:
        params = model.parameters() if isinstance(model, torch.nn.Module) else model
        param_groups = [p for p in params if p.requires_grad]
    lr, wd = optim_cfg.LR, optim_cfg.WEIGHT_DECAY
    betas = (optim_cfg.ADAM_BETA1, optim_cfg.ADAM_BETA2)
    if name == "sgd":
        return torch.optim.SGD(param_groups, lr=lr, momentum=optim_cfg.MOMENTUM, weight_decay=wd,
                               dampening=optim_cfg.SGD_DAMPNING, nesterov=optim_cfg.SGD_NESTEROV)
    if name in ("adam", "amsgrad"):
        return torch.optim.Adam(param_groups, lr=lr, weight_decay=wd, betas=betas, amsgrad=name == "amsgrad")
    if name == "adamw":
        return torch.optim.AdamW(param_groups, lr=lr, weight_decay=wd, betas=betas)
    return torch.optim.RMSprop(param_groups, lr=lr, momentum=optim_cfg.MOMENTUM, weight_decay=wd,
                               alpha=optim_cfg.RMSPROP_ALPHA)


class EpochLRFactor:
    """LR multiplier as a function of the number of completed epochs (a picklable LambdaLR rule)."""

    def __init__(self, optim_cfg, base_lr):
        self.name = optim_cfg.LR_SCHEDULER
        if self.name not in SCHEDULERS:
            raise ValueError(f"OPTIM.LR_SCHEDULER must be one of {SCHEDULERS}, got {self.name!r}")
        self.max_epoch = optim_cfg.MAX_EPOCH
        self.stepsize = list(optim_cfg.STEPSIZE) if isinstance(optim_cfg.STEPSIZE, (list, tuple)) \
            else [optim_cfg.STEPSIZE]
        self.gamma = optim_cfg.GAMMA
        self.warmup_epoch = optim_cfg.WARMUP_EPOCH
        self.warmup_type = optim_cfg.WARMUP_TYPE
        self.recount = optim_cfg.WARMUP_RECOUNT
        self.base_lr = base_lr
        self.cons_lr = optim_cfg.WARMUP_CONS_LR
        self.min_lr = optim_cfg.WARMUP_MIN_LR
        if self.warmup_epoch > 0 and self.warmup_type not in ("constant", "linear"):
            raise ValueError(f"OPTIM.WARMUP_TYPE must be constant or linear, got {self.warmup_type!r}")
        if self.name == "single_step":
            self.stepsize = self.stepsize[-1:]  # Dassl: single_step uses the last entry of STEPSIZE
            if self.stepsize[0] <= 0 and self.max_epoch > 0:
                self.stepsize = [self.max_epoch]  # Dassl: a non-positive step size means "decay at the end"

    def __call__(self, epoch):
        if epoch < self.warmup_epoch:
            if self.warmup_type == "constant":
                return self.cons_lr / self.base_lr
            return self.min_lr / self.base_lr if epoch == 0 else epoch / self.warmup_epoch
        step = epoch - self.warmup_epoch if (self.warmup_epoch > 0 and self.recount) else epoch
        if self.name == "cosine":
            return 0.5 * (1 + math.cos(math.pi * step / self.max_epoch))
        if self.name == "single_step":
            return self.gamma ** (step // self.stepsize[0])
        return self.gamma ** bisect_right(sorted(self.stepsize), step)


def build_lr_scheduler(optimizer, optim_cfg):
    base_lr = optimizer.param_groups[0]["lr"]
    return torch.optim.lr_scheduler.LambdaLR(optimizer, EpochLRFactor(optim_cfg, base_lr))

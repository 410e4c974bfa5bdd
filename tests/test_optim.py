"""``build_optimizer`` / ``build_lr_scheduler``: Dassl's defaults and per-epoch LR sequences."""
import math

import pytest
import torch
from torch import nn

from trainers.engine import get_cfg_default
from trainers.engine.optim import build_lr_scheduler, build_optimizer


def optim_cfg(**keys):
    cfg = get_cfg_default().OPTIM
    cfg.NAME = "sgd"
    for key, value in keys.items():
        setattr(cfg, key, value)
    return cfg


def lr_sequence(cfg, epochs=None):
    """The LR in effect during each epoch, stepping the scheduler once per epoch as the trainers do."""
    model = nn.Linear(2, 2)
    optimizer = build_optimizer(model, cfg)
    scheduler = build_lr_scheduler(optimizer, cfg)
    lrs = []
    for _ in range(epochs or cfg.MAX_EPOCH):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


def test_sgd_gets_dassls_defaults():
    model = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 1))
    model[0].weight.requires_grad_(False)
    optimizer = build_optimizer(model, optim_cfg(LR=0.002))
    assert isinstance(optimizer, torch.optim.SGD)
    group = optimizer.param_groups[0]
    assert (group["lr"], group["momentum"], group["weight_decay"], group["dampening"], group["nesterov"]) == (
        0.002, 0.9, 5e-4, 0, False)
    assert len(group["params"]) == 3  # the frozen weight is not handed to the optimiser


def test_cosine_with_constant_warmup_matches_hosts_md():
    """LR 0.0035 over 5 epochs, 1 constant warm-up epoch at 1e-5, as Dassl gives them."""
    cfg = optim_cfg(LR=0.0035, MAX_EPOCH=5, LR_SCHEDULER="cosine", WARMUP_EPOCH=1, WARMUP_TYPE="constant",
                    WARMUP_CONS_LR=1e-5)
    lrs = lr_sequence(cfg)
    assert lrs == pytest.approx([1e-5, 3.5e-3, 3.166e-3, 2.291e-3, 1.209e-3], rel=2e-4)
    closed_form = [1e-5] + [0.0035 * (1 + math.cos(math.pi * (e - 2) / 5)) / 2 for e in range(2, 6)]
    assert lrs == pytest.approx(closed_form, rel=1e-12)


def test_cosine_without_warmup():
    lrs = lr_sequence(optim_cfg(LR=0.1, MAX_EPOCH=4, LR_SCHEDULER="cosine"), epochs=5)
    assert lrs == pytest.approx([0.1 * (1 + math.cos(math.pi * e / 4)) / 2 for e in range(5)], abs=1e-12)


def test_linear_warmup_then_cosine():
    cfg = optim_cfg(LR=0.01, MAX_EPOCH=6, LR_SCHEDULER="cosine", WARMUP_EPOCH=3, WARMUP_TYPE="linear",
                    WARMUP_MIN_LR=1e-5)
    expected = [1e-5, 0.01 / 3, 0.02 / 3] + [0.01 * (1 + math.cos(math.pi * s / 6)) / 2 for s in range(3)]
    assert lr_sequence(cfg) == pytest.approx(expected, rel=1e-12)


def test_single_step():
    cfg = optim_cfg(LR=0.1, MAX_EPOCH=7, LR_SCHEDULER="single_step", STEPSIZE=(3,), GAMMA=0.5)
    assert lr_sequence(cfg) == pytest.approx([0.1] * 3 + [0.05] * 3 + [0.025], rel=1e-12)


def test_single_step_uses_the_last_stepsize_and_defaults_to_max_epoch():
    """Dassl takes ``STEPSIZE[-1]`` for single_step, and a non-positive step size means MAX_EPOCH."""
    cfg = optim_cfg(LR=0.1, MAX_EPOCH=6, LR_SCHEDULER="single_step", STEPSIZE=(5, 2), GAMMA=0.1)
    assert lr_sequence(cfg) == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001, 0.001], rel=1e-12)
    cfg = optim_cfg(LR=0.1, MAX_EPOCH=3, LR_SCHEDULER="single_step", STEPSIZE=(-1,), GAMMA=0.1)
    assert lr_sequence(cfg, epochs=4) == pytest.approx([0.1, 0.1, 0.1, 0.01], rel=1e-12)


def test_multi_step():
    cfg = optim_cfg(LR=0.1, MAX_EPOCH=6, LR_SCHEDULER="multi_step", STEPSIZE=(2, 4), GAMMA=0.1)
    assert lr_sequence(cfg) == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001, 0.001], rel=1e-12)


def test_multi_step_after_constant_warmup():
    cfg = optim_cfg(LR=0.1, MAX_EPOCH=5, LR_SCHEDULER="multi_step", STEPSIZE=(2,), GAMMA=0.1, WARMUP_EPOCH=1,
                    WARMUP_TYPE="constant", WARMUP_CONS_LR=1e-4)
    assert lr_sequence(cfg) == pytest.approx([1e-4, 0.1, 0.1, 0.01, 0.01], rel=1e-12)


def test_scheduler_state_round_trip():
    """A scheduler restored from its state_dict (as on resume) continues the same sequence."""
    cfg = optim_cfg(LR=0.0035, MAX_EPOCH=5, LR_SCHEDULER="cosine", WARMUP_EPOCH=1, WARMUP_TYPE="constant")
    full = lr_sequence(cfg)
    model = nn.Linear(2, 2)
    optimizer = build_optimizer(model, cfg)
    scheduler = build_lr_scheduler(optimizer, cfg)
    for _ in range(2):
        optimizer.step()
        scheduler.step()
    state = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}
    optimizer2 = build_optimizer(nn.Linear(2, 2), cfg)
    scheduler2 = build_lr_scheduler(optimizer2, cfg)
    optimizer2.load_state_dict(state["optimizer"])
    scheduler2.load_state_dict(state["scheduler"])
    rest = []
    for _ in range(3):
        rest.append(optimizer2.param_groups[0]["lr"])
        optimizer2.step()
        scheduler2.step()
    assert rest == pytest.approx(full[2:], rel=1e-12)


@pytest.mark.parametrize("key,value", [("NAME", "sgdd"), ("LR_SCHEDULER", "cosin")])
def test_unknown_optimizer_or_scheduler(key, value):
    cfg = optim_cfg(**{key: value})
    with pytest.raises(ValueError, match=value):
        lr_sequence(cfg, epochs=1)

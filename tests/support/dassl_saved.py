"""What Dassl's ``save_model`` stores beside the weights, for checkpoints "written by the reference toolboxes".

The CoOp family trains with SGD and a cosine schedule behind a constant warm-up (Dassl's ``ConstantWarmupScheduler``).
Dassl saves ``scheduler.state_dict()``, every attribute but the optimiser: the warm-up scheduler's ``successor``
is a scheduler *object*, pickled with the optimiser it steps (and that optimiser's parameters and momentum).
With Dassl importable, its own classes make the state; otherwise the same attributes are written out.
"""
import contextlib
import inspect
from unittest import mock

import torch

WARMUP = {"warmup_epoch": 1, "cons_lr": 1e-5}


def _dassl_warmup(optimizer, successor):
    """Dassl's warm-up scheduler, or None without Dassl. Dassl passes ``verbose`` positionally, which torch >= 2.7
    no longer takes: that argument is dropped on the way (it only governs printing)."""
    try:
        from dassl.optim.lr_scheduler import ConstantWarmupScheduler
    except ImportError:
        return None
    base_init = torch.optim.lr_scheduler.LRScheduler.__init__

    def init(self, optimizer, last_epoch=-1, verbose=None):
        base_init(self, optimizer, last_epoch)

    takes_verbose = "verbose" in inspect.signature(base_init).parameters
    with contextlib.nullcontext() if takes_verbose else mock.patch.object(
            torch.optim.lr_scheduler.LRScheduler, "__init__", init):
        return ConstantWarmupScheduler(optimizer, successor, WARMUP["warmup_epoch"], WARMUP["cons_lr"])


def dassl_training_state(params, epochs=2):
    """``{"optimizer": ..., "scheduler": ...}`` as Dassl saves them after ``epochs`` epochs of SGD on ``params``."""
    params = [torch.nn.Parameter(p.detach().float().clone()) for p in params]
    optimizer = torch.optim.SGD(params, lr=0.002, momentum=0.9)
    successor = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    scheduler = _dassl_warmup(optimizer, successor)
    for _ in range(epochs):
        sum(p.square().sum() for p in params).backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        else:
            successor.step()
    if scheduler is not None:
        state = scheduler.state_dict()
    else:  # the attributes of Dassl's ConstantWarmupScheduler, the optimiser left out as in state_dict()
        state = {"successor": successor, **WARMUP, "base_lrs": [0.002], "last_epoch": epochs, "_step_count": epochs + 1,
                 "_get_lr_called_within_step": False, "_last_lr": successor.get_last_lr()}
    assert isinstance(state["successor"], torch.optim.lr_scheduler.CosineAnnealingLR)  # the object is pickled
    return {"optimizer": optimizer.state_dict(), "scheduler": state}

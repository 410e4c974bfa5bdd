"""The prompt pair of DPC: the host's tuned prompt P (frozen) and the parallel prompt P' (trained).

P' *is* the host's learnable module (its parameters are trained in place), so the host's own forward runs
with P'. P is kept as buffers holding detached copies (the released code shared memory between the two by
accident). Any other prompt values — P, or a weighted mix — are run through the host with
``torch.func.functional_call``, which swaps tensors for one call without touching the module.
"""
import torch
from torch import nn
from torch.func import functional_call


class _HostMethod(nn.Module):
    """Lets ``functional_call`` run any method of the host, not only ``forward``."""

    def __init__(self, host):
        super().__init__()
        self.host = host

    def forward(self, method, *args):
        return getattr(self.host, method)(*args)


class DualPrompts(nn.Module):
    def __init__(self, host):
        super().__init__()
        self.parallel = host.prompt_module  # P', registered so that checkpoints hold it
        # Not a registered sub-module: the host's frozen CLIP must stay out of this module's state.
        object.__setattr__(self, "_call", _HostMethod(host))
        self.names = host.prompt_parameter_names()  # relative to the host, e.g. "prompt_learner.ctx"
        if not self.names:
            raise ValueError(f"{type(host).__name__} has no learnable prompt tensors for DPC to clone")
        self._prefix = host.prompt_module_name + "."
        for name in self.names:
            self.register_buffer(self._frozen_key(name), self._parallel_tensor(name).detach().clone())

    @staticmethod
    def _frozen_key(name):
        return "frozen__" + name.replace(".", "__")

    def _parallel_tensor(self, name):
        return self.parallel.get_parameter(name[len(self._prefix):])

    def parallel_parameters(self):
        return [self._parallel_tensor(name) for name in self.names]

    def frozen(self):
        """P as {host parameter name: tensor}."""
        return {name: getattr(self, self._frozen_key(name)) for name in self.names}

    def parallel_values(self):
        return {name: self._parallel_tensor(name) for name in self.names}

    def mixed(self, weight):
        """weight * P' + (1 - weight) * P, element-wise over every tensor (exactly P at 0, P' at 1)."""
        if weight == 0:
            return self.frozen()
        if weight == 1:
            return self.parallel_values()
        frozen = self.frozen()
        return {name: weight * p + (1 - weight) * frozen[name] for name, p in self.parallel_values().items()}

    @torch.no_grad()
    def reset_from_parallel(self):
        """P := P' (after the stage-1 weights were loaded into the host)."""
        for name in self.names:
            getattr(self, self._frozen_key(name)).copy_(self._parallel_tensor(name))

    def run(self, values, method, *args):
        """``host.<method>(*args)`` with the prompt tensors replaced by ``values``."""
        return functional_call(self._call, {f"host.{k}": v for k, v in values.items()}, (method, *args))

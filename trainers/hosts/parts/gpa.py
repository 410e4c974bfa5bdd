"""Gaussian prompt aggregation (GPA) of PromptSRC.

Epoch e (1-based, of N = MAX_EPOCH) gets the weight w_e = N(e; GPA_MEAN, GPA_STD), the Gaussian density at the
integer epochs normalised to sum 1. After the optimiser and scheduler steps of each epoch's last batch, w_e times
the current prompts is added to a running sum (in each tensor's own dtype, as the reference does); after the last
epoch the sum replaces the prompts, before the last checkpoint is written and before the final test.

How this differs from the reference: the reference aggregates a copy of the *whole* model state dict -- the
frozen CLIP, its zero-shot image encoder, the token buffers -- and loads the sum back, so with fp16 weights the
frozen CLIP in its final checkpoint (and in every later evaluation) is perturbed by rounding. Here only the
learnable prompt tensors are aggregated; they get the reference's values, and the frozen CLIP stays bit-exact.
The running sum travels in every checkpoint (key ``"gpa"``), so a resumed run aggregates exactly like an
uninterrupted one; the reference loses it on resume.
"""
import math

import torch


def gaussian_weights(mean, std, num_epochs):
    """w_1..w_N: the N(mean, std) density at e = 1..N, normalised to sum 1."""
    if std <= 0:
        raise ValueError(f"GPA_STD must be positive, got {std}")
    if num_epochs < 1:
        raise ValueError(f"GPA needs at least one epoch, got MAX_EPOCH {num_epochs}")
    density = [math.exp(-0.5 * ((e - mean) / std) ** 2) / (std * math.sqrt(2 * math.pi))
               for e in range(1, num_epochs + 1)]
    total = sum(density)
    if total == 0:
        raise ValueError(f"GPA weights vanish: GPA_MEAN {mean} is too far from epochs 1..{num_epochs} "
                         f"for GPA_STD {std}")
    return [d / total for d in density]


class GaussianPromptAggregation:
    def __init__(self, mean, std, num_epochs):
        self.weights = gaussian_weights(mean, std, num_epochs)
        self.sums = {}
        self.epochs_added = 0  # epochs 1..epochs_added are in the sums

    @torch.no_grad()
    def add(self, epoch, named_tensors):
        """Add w_{epoch+1} times each tensor (``epoch`` 0-based, as Dassl counts)."""
        if epoch != self.epochs_added:
            print(f"GPA: adding epoch {epoch + 1} after epochs 1..{self.epochs_added} "
                  "(earlier epochs are missing from the aggregate)")
        weight = self.weights[epoch]
        for name, tensor in named_tensors:
            term = tensor.detach() * weight
            self.sums[name] = term if name not in self.sums else self.sums[name] + term
        self.epochs_added = epoch + 1

    @torch.no_grad()
    def load_into(self, module):
        """Replace ``module``'s parameters by the aggregate."""
        for name, param in module.named_parameters():
            if name in self.sums:
                param.copy_(self.sums[name])

    def state_dict(self):
        return {"weights": list(self.weights), "epochs_added": self.epochs_added,
                "sums": {name: t.detach().cpu() for name, t in self.sums.items()}}

    def load_state_dict(self, state, device):
        if len(state["weights"]) != len(self.weights) or any(
                not math.isclose(a, b) for a, b in zip(state["weights"], self.weights)):
            raise ValueError("The checkpoint's GPA weights differ from this config's (GPA_MEAN, GPA_STD, "
                             "OPTIM.MAX_EPOCH): resume with the config the run was started with")
        self.epochs_added = state["epochs_added"]
        self.sums = {name: t.to(device) for name, t in state["sums"].items()}

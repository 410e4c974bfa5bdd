"""The prompt pair of DPC: the host's tuned prompt P (frozen) and the parallel prompt P' (trained).

P' *is* the host's prompt learner (its parameters are trained in place). P is kept as buffers holding detached
copies (the released code shared memory between the two by accident). The prompt set is what the host
names (``HostModel.dpc_prompt_names``): a tensor outside the prompt learner (a frozen part of the host, such as a
teacher's prompts) gets a trainable clone here, so the host's own stays frozen; a buffer of the prompt learner
(BatchNorm statistics) is P' as the module holds it, with a frozen copy for P.

The host runs with any prompt values -- P, P' or a weighted mix -- through ``torch.func.functional_call``, which
swaps tensors for one call without touching the module; ``PromptedHost`` is the host under one set of values,
computing its logits in the host's own three steps (``trainers/host_api/interface.py``) and reusing the text
features that cannot change. At test time the classes route to P' (base classes of the training dataset) or to the
weighted mix (new classes, another dataset): ``routes_to_base`` and ``routed_weight``.
"""
from __future__ import annotations

from torch import nn
from torch.func import functional_call

from trainers.host_api.interface import PROMPT_LEARNER


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
        self.parallel = host.prompt_learner  # P', registered so that checkpoints hold it
        # Not a registered sub-module: the host's frozen CLIP must stay out of this module's state.
        object.__setattr__(self, "_call", _HostMethod(host))
        object.__setattr__(self, "host", host)
        self.names = host.dpc_prompt_names()  # relative to the host, e.g. "prompt_learner.ctx"
        self._prefix = PROMPT_LEARNER + "."
        buffers = {name for name, _ in host.named_buffers()}
        self._buffers_in_set = {name for name in self.names if name in buffers}
        self._parallel_is_the_hosts = all(name.startswith(self._prefix) for name in self.names)
        for name in self.names:
            if not name.startswith(self._prefix):
                if name in buffers:
                    raise ValueError(f"{type(host).__name__}.dpc_prompt_names: {name} is a buffer outside "
                                     f"{PROMPT_LEARNER}; only parameters may lie outside it")
                clone = nn.Parameter(host.get_parameter(name).detach().clone())
                self.register_parameter(self._outside_key(name), clone)
            self.register_buffer(self._frozen_key(name), self._parallel_tensor(name).detach().clone())

    @staticmethod
    def _frozen_key(name):
        return "frozen__" + name.replace(".", "__")

    @staticmethod
    def _outside_key(name):
        return "parallel__" + name.replace(".", "__")

    def _parallel_tensor(self, name):
        if not name.startswith(self._prefix):
            return getattr(self, self._outside_key(name))
        inner = name[len(self._prefix):]
        return self.parallel.get_buffer(inner) if name in self._buffers_in_set else self.parallel.get_parameter(inner)

    def parallel_parameters(self):
        """The trained tensors of P' (the prompt set's buffers are updated by the host's forward, not trained)."""
        return [self._parallel_tensor(name) for name in self.names if name not in self._buffers_in_set]

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

    def run(self, values, method, *args):
        """``host.<method>(*args)`` with the prompt tensors replaced by ``values``. Where P' is the host's own
        (every name inside its prompt learner), P' needs no swap (``functional_call`` walks every module of CLIP
        on each call, a cost of its own on small models); clones of tensors outside it are always swapped in."""
        if self._parallel_is_the_hosts and self.is_parallel(values):
            return getattr(self.host, method)(*args)
        return functional_call(self._call, {f"host.{k}": v for k, v in values.items()}, (method, *args))

    def is_parallel(self, values):
        return values.keys() == set(self.names) and all(values[n] is self._parallel_tensor(n) for n in self.names)

    def view(self, values, cache_text=False):
        return PromptedHost(self, values, cache_text)


class PromptedHost:
    """The host under one set of prompt values: ``head(encode_image, encode_text)``, as the host computes it.

    With ``cache_text`` the text features of all classes are computed once: right when the values are fixed
    (P, or the prompts of a test) and the host's text side does not see the image.
    """

    def __init__(self, prompts, values, cache_text):
        self.prompts = prompts
        self.values = values
        self.cache_text = cache_text and not prompts.host.text_depends_on_image
        self._all_text_features = None

    def image_features(self, images):
        host = self.prompts.host
        if not host.image_encoder_prompted:  # no prompt enters the image tower: no values to swap in
            return host.encode_image(images)
        return self.prompts.run(self.values, "encode_image", images)

    def text_features(self, class_idx=None, image_features=None):
        if not self.prompts.host.text_depends_on_image:
            image_features = None
        if class_idx is not None or not self.cache_text:
            return self.prompts.run(self.values, "encode_text", class_idx, image_features)
        if self._all_text_features is None:
            self._all_text_features = self.prompts.run(self.values, "encode_text", None, None)
        return self._all_text_features

    def head(self, image_features, text_features):
        return self.prompts.run(self.values, "head", image_features, text_features)

    def loss_from_features(self, image_features, text_features, labels):
        return self.prompts.run(self.values, "loss_from_features", image_features, text_features, labels)

    def logits(self, images, class_idx=None, image_features=None):
        """Logits (B, C) of the images against all classes or ``class_idx``; ``image_features`` reuses features
        computed under these values (or under any values, when the host's image side has no prompts)."""
        if image_features is None:
            image_features = self.image_features(images)
        return self.head(image_features, self.text_features(class_idx, image_features))


# ---- which prompts the test uses ----------------------------------------------------------------------------

def dataset_identity(cfg) -> dict:
    """The dataset a DPC run trains on, as its checkpoint records it (``trained_on``)."""
    return {"dataset": cfg.DATASET.NAME, "folder": cfg.DATASET.FOLDER}


def routes_to_base(cfg, trained_on: dict) -> bool:
    """Base-class prompt for the base classes of the training dataset (or all its classes)."""
    same_dataset = dataset_identity(cfg) == trained_on
    return same_dataset and cfg.DATASET.SUBSAMPLE_CLASSES in ("base", "all")


def route_weights(dpc) -> tuple[float, float]:
    """The weight of P' in the prompts of base classes and in those of every other class; ``dpc``:
    ``cfg.TRAINER.DPC``. Parallel mode: P' alone on base classes, except at ω_b = 0, where P' has no weight there
    (P alone, as in mixed mode)."""
    parallel = dpc.BASE_PROMPT == "parallel" and dpc.WEIGHT_BASE > 0
    return 1.0 if parallel else dpc.WEIGHT_BASE, dpc.WEIGHT_NEW


def routed_weight(dpc, to_base: bool) -> tuple[float, str]:
    """The weight of P' in the prompts the test routes to (``DualPrompts.mixed``), and a line saying why;
    ``dpc``: ``cfg.TRAINER.DPC``."""
    base_weight, new_weight = route_weights(dpc)
    if to_base:
        return base_weight, f"Inference on base classes: {dpc.BASE_PROMPT} prompt (weight of P' = {base_weight})"
    return new_weight, f"Inference on new classes / another dataset: weight of P' = {new_weight}"

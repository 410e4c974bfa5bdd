"""``TunedClassifier``: a finished run's prompts over any class names, for images given as files, PIL images or
a tensor batch already preprocessed with ``transform`` (the run's own test preprocessing).

Logits are computed as the run's evaluation computes them: the host's own three steps
(``trainers/host_api/interface.py``), and for a DPC run the evaluation's routing -- the class names the run was trained
on as base classes take the base prompt, every other name the new-class prompt (``trainers/dpc/trainer.py``). A
list holding both is scored one route at a time, each route filling its own columns, so every column is what that
route's evaluation gives.
"""
import contextlib
import io
from dataclasses import dataclass
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from PIL import Image

from datasets.toolbox import build_transform
from trainers.dpc.prompts import DualPrompts, route_weights
from trainers.engine.clip_trainer import ClipTrainer
from trainers.engine.prompt_shape import prompt_shape_keys
from trainers.host_api.host_trainer import host_model_class, host_trainer_class
from trainers.host_api.interface import PROMPT_LEARNER, HostModel, build_host
from trainers.hosts.zsclip import ZeroshotCLIPModel
from trainers.prompted_clip import input_resolution, load_clip
from trainers.prompted_clip.templates import dataset_template

BASE, NEW = "base", "new"


def quietly():
    """Building a host prints what a training log wants (its settings, its initial context); a user of the API
    does not."""
    return contextlib.redirect_stdout(io.StringIO())


def check_classnames(classnames):
    """The class names as a list; an empty list or one with duplicates is one line saying so."""
    names = [str(name) for name in classnames]
    if not names:
        raise ValueError("The class list is empty: give at least one class name")
    prompts = [prompt_name(name) for name in names]
    repeated = sorted({name for name, prompt in zip(names, prompts) if prompts.count(prompt) > 1})
    if repeated:
        raise ValueError(f"The class list names {', '.join(map(repr, repeated))} more than once: give each class once")
    return names


def prompt_name(name):
    """A class name as its prompt reads it (underscores as spaces): ``blue_circle`` and ``blue circle`` are one."""
    return " ".join(name.replace("_", " ").split())


def read_rgb(path):
    """An image file as RGB; one line naming the file when it cannot be read."""
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (OSError, ValueError) as err:
        raise OSError(f"Cannot read the image {path} ({' '.join(str(err).split())})") from None


def standalone_host(host_class):
    """The host's logits are CLIP's own scaled cosine between CLIP's own image features and one text feature per
    class -- not so for hosts whose prompts enter the image tower, whose text depends on the image (CoCoOp) or whose
    head is their own."""
    return (host_class.frozen_image_features and not host_class.text_depends_on_image
            and host_class.head is HostModel.head)


@dataclass
class Route:
    """One prompt set over some of the class names: the columns it fills and the host's three steps under it."""

    columns: list  # positions in the caller's class list
    encode_image: Callable  # images -> image features
    encode_text: Callable  # image features or None -> text features (C, E), or (B, C, E) per image
    head: Callable  # (image features, text features) -> logits
    text_depends_on_image: bool = False
    image_prompted: bool = False  # prompts enter the image tower: its features are this route's own
    _text: Optional[torch.Tensor] = None

    def text_features(self, image_features=None):
        if self.text_depends_on_image:
            return self.encode_text(image_features)
        if self._text is None:
            self._text = self.encode_text(None)
        return self._text

    def logits(self, images=None, image_features=None):
        if image_features is None:
            image_features = self.encode_image(images)
        return self.head(image_features, self.text_features(image_features))


class TunedClassifier:
    """A finished run (``trainers/inference/finished_run.py``) as a classifier; built by ``load_run``."""

    def __init__(self, run, device=None):
        self.run = run
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        cfg = run.cfg
        with quietly():
            self.clip_model = load_clip(cfg.MODEL.BACKBONE.NAME, self.device, fp32=True,
                                        cache_dir=cfg.MODEL.BACKBONE.CACHE_DIR)
            self.input_size = size = input_resolution(cfg.MODEL.BACKBONE.NAME, cfg.MODEL.BACKBONE.CACHE_DIR)
            test_cfg = cfg.clone()
            test_cfg.defrost()
            test_cfg.INPUT.SIZE = (size, size)
            self.transform = build_transform(test_cfg, is_train=False)
        self.host_class = host_model_class(run.host) if run.host else None
        self._routes = (None, None)  # (class names, routes) of the last list scored

    # ---- what the run is ---------------------------------------------------------------------------------

    @property
    def classnames(self):
        """The run's own classes (the default class list)."""
        return self.run.classnames

    @property
    def standalone(self):
        """Whether the class names' text features and the logit scale, with plain ``clip``, are the whole
        classifier (``tools/export.py``): ``standalone_host``."""
        return self.host_class is None or standalone_host(self.host_class)

    @property
    def logit_scale(self):
        return self.clip_model.logit_scale.exp().item()

    def routes(self, classnames=None):
        """For a DPC run, ``"base"`` or ``"new"`` per class name (the prompt its evaluation would use); None per
        name for any other run."""
        names = check_classnames(self.classnames if classnames is None else classnames)
        if not self.run.is_dpc:
            return [None] * len(names)
        trained_on_base = self.run.record.get("subsample_classes") in ("base", "all")
        base = {prompt_name(name) for name in self.run.classnames} if trained_on_base else set()
        return [BASE if prompt_name(name) in base else NEW for name in names]

    # ---- building the prompts for a class list ------------------------------------------------------------

    def _host(self, classnames):
        """The host for ``classnames``, built as the run built it, with the run's prompts loaded (a host run)."""
        run = self.run
        with quietly():
            host = build_host(self.host_class, run.cfg, classnames, self.clip_model).to(self.device).eval()
        if run.checkpoint is not None and not run.is_dpc:
            trainer_class = host_trainer_class(run.host)
            state = trainer_class.adapt_checkpoint(self.host_class.checkpoint_name, run.checkpoint["state_dict"])
            ClipTrainer.load_learnable_state(host.prompt_learner, state, run.checkpoint_path, self._shape_keys())
        return host

    @torch.no_grad()
    def prompt_sets(self):
        """The learned tensors by name, as the run's classes see them: ``{"learned": {...}}`` for a host run,
        ``{"P": {...}, "P'": {...}}`` (the host's tuned prompt and DPC's parallel one) for a DPC run; empty for
        zero-shot CLIP."""
        if self.host_class is None:
            return {}
        host = self._host(self.classnames)
        if not self.run.is_dpc:
            return {"learned": {f"{PROMPT_LEARNER}.{name}": p.detach().clone()
                                for name, p in host.prompt_learner.named_parameters()}}
        prompts = self._dual_prompts(host)
        parallel = {name: tensor.detach().clone() for name, tensor in prompts.parallel_values().items()}
        return {"P": {name: t.clone() for name, t in prompts.frozen().items()}, "P'": parallel}

    def _dual_prompts(self, host):
        """DPC's P and P' over ``host``, loaded from the run's checkpoint."""
        prompts = DualPrompts(host).to(self.device)
        ClipTrainer.load_learnable_state(prompts, self.run.checkpoint["state_dict"], self.run.checkpoint_path,
                                         self._shape_keys())
        return prompts

    def _shape_keys(self):
        recorded = (self.run.checkpoint.get("host") or {}).get("settings")
        return prompt_shape_keys(self.run.cfg, self.host_class.config_node, recorded)

    def _build_routes(self, classnames):
        run = self.run
        if self.host_class is None:  # zero-shot CLIP: the dataset's hand-written template
            template = dataset_template(run.cfg.DATASET.NAME)
            with quietly():
                model = ZeroshotCLIPModel(self.clip_model, [template.format(n.replace("_", " ")) for n in classnames])
            scale = self.clip_model.logit_scale.exp()

            def head(image_features, text_features):
                return scale * F.normalize(image_features, dim=-1) @ text_features.t()
            return [Route(list(range(len(classnames))), model.encode_image, lambda _: model.text_features, head)]
        if not run.is_dpc:
            host = self._host(classnames)
            return [Route(list(range(len(classnames))), host.encode_image, lambda f: host.encode_text(None, f),
                          host.head, host.text_depends_on_image, host.image_encoder_prompted)]
        routes = []
        weights = dict(zip((BASE, NEW), route_weights(run.cfg.TRAINER.DPC)))
        per_name = self.routes(classnames)
        for route in (BASE, NEW):
            columns = [i for i, r in enumerate(per_name) if r == route]
            if not columns:
                continue
            host = self._host([classnames[i] for i in columns])
            prompts = self._dual_prompts(host)
            values = {name: tensor.detach() for name, tensor in prompts.mixed(weights[route]).items()}
            view = prompts.view(values, cache_text=True)
            routes.append(Route(columns, view.image_features, lambda f, v=view: v.text_features(None, f), view.head,
                                host.text_depends_on_image, host.image_encoder_prompted))
        return routes

    def _routes_for(self, classnames):
        names = check_classnames(self.classnames if classnames is None else classnames)
        if self._routes[0] != names:
            self._routes = (names, self._build_routes(names))
        return names, self._routes[1]

    # ---- images ----------------------------------------------------------------------------------------

    def preprocess(self, images):
        """A batch tensor on the device from file paths, PIL images, or a tensor batch (taken as preprocessed)."""
        if isinstance(images, torch.Tensor):
            batch = images if images.dim() == 4 else images.unsqueeze(0)
            return batch.to(self.device, torch.float32)
        if isinstance(images, (str, Image.Image)) or hasattr(images, "__fspath__"):
            images = [images]
        pictures = [image if isinstance(image, Image.Image) else read_rgb(image) for image in images]
        return torch.stack([self.transform(picture.convert("RGB")) for picture in pictures]).to(self.device)

    # ---- features, logits, probabilities ------------------------------------------------------------------

    @torch.no_grad()
    def text_features(self, classnames=None):
        """Normalised text features (C, E) of the class names, each under its route's prompts."""
        names, routes = self._routes_for(classnames)
        if any(route.text_depends_on_image for route in routes):
            raise ValueError(f"{self.run.host}'s text features depend on the image: use logits() or predict()")
        features = torch.empty(len(names), self.clip_model.text_projection.shape[1], device=self.device)
        for route in routes:
            features[route.columns] = F.normalize(route.text_features().float(), dim=-1)
        return features

    @torch.no_grad()
    def image_features(self, images):
        """Normalised image features (B, E), under the prompts of the run's own classes (for a DPC run over a host
        with image prompts, its base prompt)."""
        route = self._routes_for(self.classnames)[1][0]
        return F.normalize(route.encode_image(self.preprocess(images)).float(), dim=-1)

    @torch.no_grad()
    def logits(self, images, classnames=None):
        """Logits (B, C) of the images against the class names, as the run's evaluation computes them."""
        names, routes = self._routes_for(classnames)
        batch = self.preprocess(images)
        shared = not any(route.image_prompted for route in routes)  # CLIP's own features: encoded once
        features = routes[0].encode_image(batch) if shared else None
        logits = torch.empty(len(batch), len(names), device=self.device)
        for route in routes:
            logits[:, route.columns] = route.logits(batch, features).float()
        return logits

    def predict(self, images, classnames=None):
        """Class probabilities (B, C): the softmax of ``logits``."""
        return self.logits(images, classnames).softmax(dim=-1)

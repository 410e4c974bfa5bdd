"""The DPC trainer: wraps any registered host (DESIGN §5).

Stage 2 of DPC: the host is built through its own ``build_host_model``, its stage-1 prompts are loaded
and cloned into P (frozen) and P' (trained with hard negatives), and at test time base classes and new
classes are routed to differently weighted prompts. Nothing here names a host.
"""
import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from datasets.toolbox import build_dataset, build_transform

from ..base import ClipTrainer
from ..checkpoints import load_checkpoint
from ..engine import TRAINER_REGISTRY, get_cfg_default
from ..optim import build_lr_scheduler, build_optimizer
from ..config import extend_cfg
from .config import NEGATIVE_POOLS, check_dpc_config, map_reference_keys
from .loss import batch_classes, symmetric_infonce
from .negative_pool import NegativePool, read_image_library
from .negatives import select_negatives
from .prompts import DualPrompts


def host_trainer_class(name):
    """The registered host trainer; it must implement the host interface (trainers/host.py)."""
    cls = TRAINER_REGISTRY.get(name)
    if issubclass(cls, DPC):
        raise ValueError(f"TRAINER.DPC.HOST cannot be the wrapper itself ({name!r})")
    if not hasattr(cls, "build_host_model"):
        raise ValueError(f"TRAINER.DPC.HOST {name!r} does not implement the host interface (build_host_model); "
                         "see trainers/host.py")
    return cls


class _LookAhead:
    """Iterates the training loader one batch ahead, exposing the next batch as ``trainer.upcoming_batch``."""

    def __init__(self, loader, trainer):
        self.loader = loader
        self.trainer = trainer

    def __len__(self):
        return len(self.loader)

    @property
    def sampler(self):
        return self.loader.sampler

    def __iter__(self):
        batches = iter(self.loader)
        current = next(batches, None)
        while current is not None:
            upcoming = next(batches, None)
            self.trainer.upcoming_batch = upcoming
            yield current
            current = upcoming
        self.trainer.upcoming_batch = None


@dataclass
class _PreparedStep:
    batch: dict
    images: torch.Tensor
    labels: torch.Tensor
    anchor_features: object  # the anchors' image features when the host's image side has no prompts
    negative_classes: list
    pending: object  # negative images being loaded


def dataset_identity(cfg):
    return {"dataset": cfg.DATASET.NAME, "folder": cfg.DATASET.FOLDER}


@TRAINER_REGISTRY.register()
class DPC(ClipTrainer):
    registered_name = "dual_prompts"
    default_host = None  # aliases of the reference code fix their host

    def __init__(self, cfg):
        for note in self.resolve_config(cfg):
            print(note)
        check_dpc_config(cfg.TRAINER.DPC)
        self.host_cls = host_trainer_class(cfg.TRAINER.DPC.HOST)
        self.stage1_loaded = False
        self.trained_on = dataset_identity(cfg)
        super().__init__(cfg)

    @classmethod
    def resolve_config(cls, cfg):
        """The reference code's names: its trainer aliases fix the host, its ``SPLE.*`` keys map onto DPC's."""
        frozen = cfg.is_frozen()
        cfg.defrost()
        notes = []
        if cls.default_host:
            notes.append(f"Trainer {cfg.TRAINER.NAME} -> DPC with TRAINER.DPC.HOST {cls.default_host}")
            cfg.TRAINER.DPC.HOST = cls.default_host
        note = map_reference_keys(cfg, extend_cfg(get_cfg_default()))
        if note:
            notes.append(note)
        if frozen:
            cfg.freeze()
        return notes

    @classmethod
    def identity_extra(cls, cfg):
        return {"host": cfg.TRAINER.DPC.HOST}

    @property
    def config_node(self):
        return self.host_cls.config_node  # PREC and every prompt setting come from the host's own node

    @property
    def dpc_cfg(self):
        return self.cfg.TRAINER.DPC

    # ---- building ------------------------------------------------------------------------------------

    def build_model(self):
        dpc = self.dpc_cfg
        self.host = self.host_cls.build_host_model(self.cfg, self.dm.dataset.classnames, self.load_clip())
        self.host.to(self.device)
        if dpc.BACKBONE_DIR:
            self.load_stage1(dpc.BACKBONE_DIR, dpc.BACKBONE_EPOCH)
        self.prompts = DualPrompts(self.host).to(self.device)
        for param in self.host.parameters():
            param.requires_grad_(False)
        parallel = self.prompts.parallel_parameters()
        for param in parallel:
            param.requires_grad_(True)
            if dpc.BASE_PROMPT == "parallel":
                # The released code trains the stored P' with a 1/omega_b gradient factor.
                param.register_hook(lambda grad, w=dpc.WEIGHT_BASE: grad / w)
        self.model = self.host
        self.optim = build_optimizer(parallel, self.cfg.OPTIM)
        self.sched = build_lr_scheduler(self.optim, self.cfg.OPTIM)
        self.register_model(self.registered_name, self.prompts, self.optim, self.sched)
        self._frozen_text_features = None
        self.negative_pool = None
        self._prepared = None

    def build_data_loader(self):
        super().build_data_loader()
        self.upcoming_batch = None
        self.train_loader_x = _LookAhead(self.train_loader_x, self)

    def load_stage1(self, backbone_dir, epoch):
        """Load the host's stage-1 checkpoint (a run directory or a checkpoint file) into the host's prompts."""
        if os.path.isfile(backbone_dir):
            path = backbone_dir
        else:
            path = self.checkpoint_path(
                backbone_dir, self.host_cls.registered_name, epoch if epoch >= 0 else None, prefer_latest=True,
                hint="TRAINER.DPC.BACKBONE_DIR must be the host's stage-1 output directory; check BACKBONE_EPOCH")
        checkpoint = load_checkpoint(path)
        print(f'Loading the stage-1 {self.dpc_cfg.HOST} prompts from "{path}" (epoch = {checkpoint.get("epoch")})')
        state = self.host_cls.adapt_checkpoint(self.host_cls.registered_name, checkpoint["state_dict"])
        self.load_learnable_state(self.host.prompt_module, state, path)
        self.stage1_loaded = True
        self.built_on = (checkpoint.get("run") or {}).get("run_id")  # P and P' are cloned from this run

    def build_negative_pool(self):
        source = self.dpc_cfg.NEGATIVE_POOL
        if source == "train":
            items = self.dm.dataset.train_x
        elif source == "full":
            cfg = self.cfg.clone()
            cfg.defrost()
            cfg.DATASET.NUM_SHOTS = -1
            cfg.freeze()
            items = build_dataset(cfg).train_x
        elif os.path.isfile(source):
            items = read_image_library(source, self.dm.dataset.classnames)
        else:
            raise FileNotFoundError(f"TRAINER.DPC.NEGATIVE_POOL must be one of {NEGATIVE_POOLS} or an existing "
                                    f"image-library json; got {source!r}")
        print(f"Negative pool: {len(items):,} images ({source})")
        transform = build_transform(self.cfg, is_train=True)
        return NegativePool(items, transform, num_workers=self.cfg.DATALOADER.NUM_WORKERS)

    # ---- training ------------------------------------------------------------------------------------

    def before_train(self):
        if self.negative_pool is None:  # first: a bad pool is reported before the run's outputs are touched
            self.negative_pool = self.build_negative_pool()
        super().before_train()
        if not self.stage1_loaded and self.start_epoch == 0:
            raise ValueError("TRAINER.DPC.BACKBONE_DIR is required for training: the host's stage-1 output directory")

    def after_train(self):
        super().after_train()
        if self.negative_pool is not None:
            self.negative_pool.close()

    @torch.no_grad()
    def frozen_text_features(self):
        """P's normalised text features of all classes; constant, so computed once (text-independent hosts)."""
        if self._frozen_text_features is None:
            features = self.prompts.run(self.prompts.frozen(), "encode_text")
            self._frozen_text_features = F.normalize(features, dim=-1)
        return self._frozen_text_features

    @torch.no_grad()
    def score(self, images):
        """Scores of the frozen prompt P over all classes, and the anchors' image features when reusable."""
        frozen = self.prompts.frozen()
        if self.host.text_depends_on_image:
            return self.prompts.run(frozen, "logits", images), None
        if self.host.image_encoder_prompted:
            image_features = self.prompts.run(frozen, "encode_image", images)
        else:
            image_features = self.host.encode_image(images)  # prompt-free: the same under P and P'
        scores = self.host.logit_scale.exp() * F.normalize(image_features, dim=-1) @ self.frozen_text_features().t()
        return scores, None if self.host.image_encoder_prompted else image_features

    def dhno_loss(self, images, labels, anchor_features=None):
        """Symmetric InfoNCE of P' over the M images and the text features of the classes present."""
        classes, targets = batch_classes(labels)
        if self.host.text_depends_on_image:
            return symmetric_infonce(self.host.logits(images, classes), targets)
        if anchor_features is not None:
            rest = images[anchor_features.shape[0]:]
            image_features = torch.cat([anchor_features, self.host.encode_image(rest)]) if len(rest) else anchor_features
        else:
            image_features = self.host.encode_image(images)
        text_features = self.host.encode_text(classes)
        logits = self.host.logit_scale.exp() * F.normalize(image_features, dim=-1) @ \
            F.normalize(text_features, dim=-1).t()
        return symmetric_infonce(logits, targets)

    def prepare_step(self, batch):
        """Score a batch with P, choose its negatives and start loading their images (in the background)."""
        images, labels = self.parse_batch_train(batch)
        dpc = self.dpc_cfg
        with self.autocast():
            scores, anchor_features = self.score(images)
        negatives = select_negatives(scores.float().cpu(), labels.cpu(), dpc.TOPK, dpc.MIN_NEGATIVES,
                                     available=self.negative_pool.classes)
        negative_classes = [c for per_sample in negatives for c in per_sample]
        return _PreparedStep(batch, images, labels, anchor_features, negative_classes,
                             self.negative_pool.request(negative_classes))

    def forward_backward(self, batch):
        prepared, self._prepared = self._prepared, None
        step = prepared if prepared is not None and prepared.batch is batch else self.prepare_step(batch)
        negative_images = step.pending.collect()
        if self.upcoming_batch is not None:
            # The next batch's negatives depend only on the frozen P: their images load while this step runs.
            self._prepared = self.prepare_step(self.upcoming_batch)
        images, labels = step.images, step.labels
        if negative_images is not None:
            images = torch.cat([images, negative_images.to(self.device, images.dtype)])
            labels = torch.cat([labels, torch.tensor(step.negative_classes, device=self.device)])
        with self.autocast():
            loss = self.dhno_loss(images, labels, step.anchor_features)
            if self.dpc_cfg.HOST_LOSS_WEIGHT > 0:
                loss = loss + self.dpc_cfg.HOST_LOSS_WEIGHT * self.host.loss(step.images, step.labels)[0]
        self.backward_and_update(loss)
        if (self.batch_idx + 1) == self.num_batches:
            self.update_lr()
        return {"loss": loss.item(), "negatives": len(step.negative_classes) / len(step.labels)}

    # ---- inference -----------------------------------------------------------------------------------

    def routes_to_base(self):
        """Base-class prompt for the base classes of the training dataset (or all its classes)."""
        same_dataset = dataset_identity(self.cfg) == self.trained_on
        subsample = self.cfg.DATASET.SUBSAMPLE_CLASSES
        return same_dataset and subsample in ("base", "all")

    def inference_prompts(self):
        dpc = self.dpc_cfg
        if self.routes_to_base():
            weight = 1.0 if dpc.BASE_PROMPT == "parallel" else dpc.WEIGHT_BASE
            print(f"Inference on base classes: {dpc.BASE_PROMPT} prompt (weight of P' = {weight})")
        else:
            weight = dpc.WEIGHT_NEW
            print(f"Inference on new classes / another dataset: weight of P' = {weight}")
        return self.prompts.mixed(weight)

    def test(self, split=None):
        self._test_prompts = {name: t.detach() for name, t in self.inference_prompts().items()}
        self._test_text_features = None
        return super().test(split)

    def model_inference(self, images):
        values = self._test_prompts
        if self.host.text_depends_on_image:
            return self.prompts.run(values, "logits", images)
        if self._test_text_features is None:  # constant over the test set
            self._test_text_features = F.normalize(self.prompts.run(values, "encode_text"), dim=-1)
        image_features = F.normalize(self.prompts.run(values, "encode_image", images), dim=-1)
        return self.host.logit_scale.exp() * image_features @ self._test_text_features.t()

    # ---- checkpoints ---------------------------------------------------------------------------------

    def checkpoint_extra(self, name):
        return {"dpc": {"host": self.dpc_cfg.HOST, "trained_on": self.trained_on}}

    def after_load_checkpoint(self, name, checkpoint):
        info = checkpoint.get("dpc", {})
        if info.get("host") not in (None, self.dpc_cfg.HOST):
            raise ValueError(f"The checkpoint was trained with TRAINER.DPC.HOST {info['host']!r}, "
                             f"not {self.dpc_cfg.HOST!r}")
        self.trained_on = info.get("trained_on", self.trained_on)
        self.built_on = (checkpoint.get("run") or {}).get("built_on", self.built_on)


@TRAINER_REGISTRY.register()
class StackSPLE_CoOp(DPC):
    """The released code's name for DPC over CoOp; its ``SPLE.*`` keys are mapped onto ``TRAINER.DPC``."""

    default_host = "CoOp"

"""The DPC trainer: stage 2 of DPC over any registered host.

The host is built as its own trainer builds it (``trainers.hosts.interface.build_host``), its stage-1 prompts are
loaded and cloned into P (frozen) and P' (trained with hard negatives), and at test time base classes and new
classes are routed to differently weighted prompts. Logits are always the host's own three steps
(``trainers/hosts/interface.py``) under the chosen prompt values. Nothing here names a host.
"""
import os

import torch

from datasets.toolbox import build_dataset, build_transform
from trainers.dpc.config import NEGATIVE_POOLS, check_dpc_config, map_reference_keys
from trainers.dpc.loss import batch_classes, symmetric_infonce
from trainers.dpc.negative_pool import NegativePool, image_folder, negative_workers, read_image_library
from trainers.dpc.negatives import select_negatives
from trainers.dpc.prompts import DualPrompts
from trainers.dpc.stage1 import inherit_host, inherit_stage1_host, read_stage1_checkpoint, stage1_checkpoint
from trainers.dpc.steps import BatchesWithNext, ScoredBatch, ScoresOnHost, StepAhead
from trainers.engine import TRAINER_REGISTRY, get_cfg_default
from trainers.engine.clip_trainer import ClipTrainer
from trainers.engine.config import ConfigError, extend_cfg, get_key
from trainers.engine.optim import build_lr_scheduler, build_optimizer
from trainers.evaluation.scoring import FeatureScorer
from trainers.hosts.host_trainer import host_model_class, host_trainer_class
from trainers.hosts.interface import HostModel, build_host
from trainers.hosts.settings import BACKBONE_KEY, INPUT_KEYS, host_record, prompt_shape_keys
from trainers.run.checkpoints import load_checkpoint


def dataset_identity(cfg):
    return {"dataset": cfg.DATASET.NAME, "folder": cfg.DATASET.FOLDER}


def route_weights(dpc_cfg):
    """The weight of P' in the prompts of base classes and in those of every other class (``mixed``)."""
    return 1.0 if dpc_cfg.BASE_PROMPT == "parallel" else dpc_cfg.WEIGHT_BASE, dpc_cfg.WEIGHT_NEW


@TRAINER_REGISTRY.register()
class DPC(ClipTrainer):
    registered_name = "dual_prompts"
    default_host = None  # aliases of the reference code fix their host

    def __init__(self, cfg):
        for note in self.resolve_config(cfg):
            print(note)
        check_dpc_config(cfg.TRAINER.DPC)
        self.host_class = host_model_class(cfg.TRAINER.DPC.HOST) if cfg.TRAINER.DPC.HOST else None
        self.stage1_loaded = False
        self.trained_on = dataset_identity(cfg)
        super().__init__(cfg)

    @classmethod
    def resolve_config(cls, cfg):
        """Settle what the command line leaves open: the reference code's names (its trainer aliases fix the host,
        its ``SPLE.*`` keys map onto DPC's), then the host as the stage-1 checkpoint records it (``stage1.py``)."""
        frozen = cfg.is_frozen()
        cfg.defrost()
        defaults = extend_cfg(get_cfg_default())
        notes = []
        if cls.default_host:
            notes.append(f"Trainer {cfg.TRAINER.NAME} -> DPC with TRAINER.DPC.HOST {cls.default_host}")
            cfg.TRAINER.DPC.HOST = cls.default_host
        note = map_reference_keys(cfg, defaults)
        if note:
            notes.append(note)
        notes += inherit_stage1_host(cfg, defaults)
        if frozen:
            cfg.freeze()
        return notes

    @classmethod
    def dataset_opts(cls, cfg):
        """The host's per-dataset settings (``HostTrainer.dataset_opts``), so that DPC's host computes as the host's
        own run on the same data does; the command line and the stage-1 record rules still apply after them."""
        host = cfg.TRAINER.DPC.HOST or cls.default_host
        return host_trainer_class(host).dataset_opts(cfg) if host else []

    @classmethod
    def identity_extra(cls, cfg):
        return {"host": cfg.TRAINER.DPC.HOST}

    @classmethod
    def identity_nodes(cls, cfg):
        host = cfg.TRAINER.DPC.HOST
        return ["DPC", host_model_class(host).config_node] if host else ["DPC"]

    @property
    def config_node(self):
        """The host's node: PREC and every prompt setting come from there."""
        return self.host_class.config_node if self.host_class is not None else None

    @property
    def dpc_cfg(self):
        return self.cfg.TRAINER.DPC

    # ---- building ------------------------------------------------------------------------------------

    def build_model(self):
        self._frozen_host = self._test_host = self.negative_pool = None
        if self.host_class is None or not self.cfg.MODEL.BACKBONE.NAME:
            print("The host is not known yet: it is built as the DPC checkpoint that load_model reads records it")
            self.host = None
            return
        self.host = build_host(self.host_class, self.cfg, self.dm.dataset.classnames, self.load_clip()).to(self.device)
        if self.dpc_cfg.BACKBONE_DIR:
            self.load_stage1()
        self.prompts = DualPrompts(self.host).to(self.device)
        for param in self.host.parameters():
            param.requires_grad_(False)
        parallel = self.prompts.parallel_parameters()
        for param in parallel:
            param.requires_grad_(True)
        self.model = self.host
        self.optim = build_optimizer(parallel, self.cfg.OPTIM)
        self.sched = build_lr_scheduler(self.optim, self.cfg.OPTIM)
        self.register_model(self.registered_name, self.prompts, self.optim, self.sched)

    def build_data_loader(self):
        super().build_data_loader()
        self.train_loader_x = BatchesWithNext(self.train_loader_x)
        self.ahead = None  # the next step while one trains (``steps.py``); None at an epoch's first step

    def load_stage1(self):
        """Load the host's stage-1 checkpoint (a run directory or a checkpoint file) into the host's prompts."""
        dpc = self.dpc_cfg
        path = stage1_checkpoint(dpc.BACKBONE_DIR, dpc.BACKBONE_EPOCH, dpc.HOST)
        checkpoint = read_stage1_checkpoint(path)
        print(f'Loading the stage-1 {dpc.HOST} prompts from "{path}" (epoch = {checkpoint.get("epoch")})')
        state = self.host_class.adapt_state_dict(checkpoint["state_dict"])
        self.load_learnable_state(self.host.prompt_learner, state, path,
                                  prompt_shape_keys(self.cfg, self.host_class.config_node))
        self.stage1_loaded = True
        self.built_on = (checkpoint.get("run") or {}).get("run_id")  # P and P' are cloned from this run

    def rebuild_host(self, record, source):
        """Make the host the one ``record`` describes (``stage1.py``'s rules), rebuilding it -- and the data, for
        another backbone or input -- when the one built from this run's config differs."""
        cfg = self.cfg.clone()
        cfg.defrost()
        notes = inherit_host(cfg, extend_cfg(get_cfg_default()), record, source)
        cfg.freeze()
        if self.host is not None and cfg == self.cfg:
            return
        for note in notes:
            print(note)
        data_changed = any(get_key(cfg, key) != get_key(self.cfg, key) for key in (BACKBONE_KEY, *INPUT_KEYS))
        self.cfg, self.host_class = cfg, host_model_class(cfg.TRAINER.DPC.HOST)
        if data_changed:
            self.build_data_loader()
        for registry in (self._models, self._optims, self._scheds):
            registry.pop(self.registered_name, None)
        self.build_model()

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
            items = read_image_library(source, self.dm.dataset.classnames, image_folder(self.dm.dataset))
        else:
            raise FileNotFoundError(f"TRAINER.DPC.NEGATIVE_POOL must be one of {NEGATIVE_POOLS} or an existing "
                                    f"image-library json; got {source!r}")
        print(f"Negative pool: {len(items):,} images ({source})")
        transform = build_transform(self.cfg, is_train=True)
        workers = negative_workers(self.cfg.DATALOADER.NUM_WORKERS, self.device)
        if workers != self.cfg.DATALOADER.NUM_WORKERS:
            print(f"Negative images: {workers} worker(s) (DATALOADER.NUM_WORKERS {self.cfg.DATALOADER.NUM_WORKERS}; "
                  f"training on the CPU, which has {os.cpu_count()} cores)")
        return NegativePool(items, transform, num_workers=workers)

    # ---- training ------------------------------------------------------------------------------------

    def before_train(self):
        if self.negative_pool is None:  # first: a bad pool is reported before the run's outputs are touched
            self.negative_pool = self.build_negative_pool()
        super().before_train()
        if not self.stage1_loaded and self.start_epoch == 0:
            if self.dpc_cfg.BACKBONE_DIR:  # given, but holds no checkpoint: say so, naming the folder
                stage1_checkpoint(self.dpc_cfg.BACKBONE_DIR, self.dpc_cfg.BACKBONE_EPOCH, self.dpc_cfg.HOST)
            raise ValueError("TRAINER.DPC.BACKBONE_DIR is required for training: the host's stage-1 output directory")

    def after_train(self):
        super().after_train()
        if self.negative_pool is not None:
            self.negative_pool.close()

    @property
    def frozen_host(self):
        """The host under P: constant, so P's text features are computed once."""
        if self._frozen_host is None:
            self._frozen_host = self.prompts.view(self.prompts.frozen(), cache_text=True)
        return self._frozen_host

    @torch.no_grad()
    def score(self, images):
        """Scores over all classes that rank the hard negatives, and the anchors' image features when P' shares them:
        the host's own scorer where it has one (``HostModel.negative_scores``), else the host under the frozen P."""
        scores = self.host.negative_scores(images)
        if scores is not None:
            return scores, None  # the anchors' features are then computed under P' in the loss
        image_features = self.frozen_host.image_features(images)
        scores = self.frozen_host.logits(images, image_features=image_features)
        return scores, None if self.host.image_encoder_prompted else image_features

    def dhno_loss(self, images, labels, anchor_features=None, num_anchors=None):
        """Symmetric InfoNCE of P' over the M images and the text features of the classes present, plus
        ``HOST_LOSS_WEIGHT`` times the host's own loss on the ``num_anchors`` anchors (the first images).

        The host's term reuses the step's features where the host's loss is a function of them
        (``HostModel.loss_from_features``): all classes' text features are encoded once and DHNO takes the
        rows of the classes present, so neither the anchors nor the text are encoded twice."""
        classes, targets = batch_classes(labels)
        parallel = self.prompts.view(self.prompts.parallel_values())
        image_features = self.contrastive_image_features(parallel, images, anchor_features)
        weight = self.dpc_cfg.HOST_LOSS_WEIGHT
        if weight > 0 and num_anchors is None:
            raise ValueError("HOST_LOSS_WEIGHT > 0: dhno_loss needs num_anchors (the host's loss is on the anchors)")
        if weight <= 0 or not self.host_loss_reuses_features:
            loss = symmetric_infonce(parallel.logits(images, classes, image_features=image_features), targets)
            if weight > 0:  # a host whose loss needs more than the features (PromptSRC, CoCoOp's per-image text)
                loss = loss + weight * self.host.loss(images[:num_anchors], labels[:num_anchors]).total
            return loss
        all_text = parallel.text_features(None, None)
        loss = symmetric_infonce(parallel.head(image_features, all_text[classes]), targets)
        host_loss = parallel.loss_from_features(image_features[:num_anchors], all_text, labels[:num_anchors])
        return loss + weight * host_loss.total

    @staticmethod
    def contrastive_image_features(parallel, images, anchor_features):
        """The M images' features under P'; the anchors' come from scoring when P' shares them (no image prompts)."""
        if anchor_features is None:
            return parallel.image_features(images)
        rest = images[len(anchor_features):]
        return torch.cat([anchor_features, *([parallel.image_features(rest)] if len(rest) else [])])

    @property
    def host_loss_reuses_features(self):
        """The host's loss is ``loss_from_features`` of one set of text features for all images."""
        return type(self.host).loss is HostModel.loss and not self.host.text_depends_on_image

    def score_batch(self, batch):
        """Launch the scoring of a training batch with P (the scores reach the CPU without a wait)."""
        images, labels = self.parse_batch_train(batch)
        with self.autocast():
            scores, anchor_features = self.score(images)
        return ScoredBatch(images, labels, anchor_features, ScoresOnHost(scores.float(), labels))

    def choose_negatives(self, scored):
        """Select a scored batch's hard negatives (a wait for its scores) and start loading their images."""
        dpc = self.dpc_cfg
        scores, labels = scored.scores.wait()
        negatives = select_negatives(scores, labels, dpc.TOPK, dpc.MIN_NEGATIVES, available=self.negative_pool.classes)
        negative_classes = [c for per_sample in negatives for c in per_sample]
        return StepAhead(scored, negative_classes, self.negative_pool.request(negative_classes))

    @property
    def objective_scale(self):
        """The factor on the whole objective (DHNO's loss plus HOST_LOSS_WEIGHT times the host's) before backward.

        In parallel mode P' is both what is trained and what base classes use, and the released code trains it
        with a 1/omega_b gradient factor; here that factor scales the objective, so it applies to both terms alike
        (HOST_LOSS_WEIGHT stays relative to DHNO's loss) and the logged loss is the unscaled one. Mixed mode: 1.
        """
        dpc = self.dpc_cfg
        return 1.0 / dpc.WEIGHT_BASE if dpc.BASE_PROMPT == "parallel" else 1.0

    def forward_backward(self, batches):
        """One DHNO step; ``batches`` is the step's batch and the next one. The order is ``steps.py``'s."""
        batch, upcoming = batches
        ahead = self.ahead or self.choose_negatives(self.score_batch(batch))  # an epoch's first step: now
        step = ahead.collect()  # 1. this step's negative images
        following = self.score_batch(upcoming) if upcoming is not None else None  # 2. the next step, with P
        images, labels = step.contrastive_batch()
        with self.autocast():
            loss = self.dhno_loss(images, labels, step.anchor_features, num_anchors=len(step.labels))
        self.backward_and_update(loss * self.objective_scale)  # 3.
        self.ahead = self.choose_negatives(following) if following is not None else None  # 4. while 3 runs
        if (self.batch_idx + 1) == self.num_batches:
            self.update_lr()
        return {"loss": loss.item(), "negatives": step.negatives_per_anchor}

    # ---- inference -----------------------------------------------------------------------------------

    def routes_to_base(self):
        """Base-class prompt for the base classes of the training dataset (or all its classes)."""
        same_dataset = dataset_identity(self.cfg) == self.trained_on
        subsample = self.cfg.DATASET.SUBSAMPLE_CLASSES
        return same_dataset and subsample in ("base", "all")

    def inference_weight(self):
        """The weight of P' in the prompts the test routes to, and a line saying why."""
        dpc = self.dpc_cfg
        base_weight, new_weight = route_weights(dpc)
        if self.routes_to_base():
            return base_weight, f"Inference on base classes: {dpc.BASE_PROMPT} prompt (weight of P' = {base_weight})"
        return new_weight, f"Inference on new classes / another dataset: weight of P' = {new_weight}"

    def inference_host(self):
        """The host under the routed prompts; their text features are computed once."""
        weight, _ = self.inference_weight()
        values = {name: tensor.detach() for name, tensor in self.prompts.mixed(weight).items()}
        return self.prompts.view(values, cache_text=True)

    @torch.no_grad()
    def inference_logits(self, images):
        """Logits of the routed prompts, as the test computes them."""
        host = self._test_host if self._test_host is not None else self.inference_host()
        return host.logits(images)

    def model_inference(self, images):
        return self.inference_logits(images)

    def test_scorer(self):
        """The routed prompts' logits from the images' features; the host's frozen image features are cacheable."""
        host = self._test_host if self._test_host is not None else self.inference_host()
        frozen = self.host.image_encoder.visual if self.host.frozen_image_features else None
        return FeatureScorer(host.image_features, lambda features: host.logits(None, image_features=features), frozen)

    def test(self, split=None):
        if self.host is None:
            raise ConfigError("DPC has no host to evaluate: give --model-dir (a DPC run) or TRAINER.DPC.BACKBONE_DIR")
        print(self.inference_weight()[1])
        self._test_host = self.inference_host()
        try:
            return super().test(split)
        finally:
            self._test_host = None

    # ---- checkpoints ---------------------------------------------------------------------------------

    def load_model(self, directory, epoch=None, read=None):
        """Evaluate a DPC run: its checkpoint alone says which host to build, and how (the file is read once)."""
        if directory:
            path = self.checkpoint_path(directory, self.registered_name, epoch)
            checkpoint = load_checkpoint(path)
            if checkpoint.get("host") is not None:
                self.rebuild_host(checkpoint["host"], path)
            read = {path: checkpoint}
        super().load_model(directory, epoch, read)

    def checkpoint_extra(self, name):
        return {"dpc": {"host": self.dpc_cfg.HOST, "trained_on": self.trained_on},
                "host": host_record(self.cfg, self.dpc_cfg.HOST, self.host_class)}

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


@TRAINER_REGISTRY.register()
class StackSPLE_PromptKD(DPC):
    """The released code's name for DPC over PromptKD; its ``SPLE.*`` keys are mapped onto ``TRAINER.DPC``."""

    default_host = "PromptKD"

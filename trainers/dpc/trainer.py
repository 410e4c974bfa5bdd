"""The DPC trainer: stage 2 of DPC over any registered host.

The host is built as its own trainer builds it (``trainers.host_api.interface.build_host``), its stage-1 prompts are
loaded and cloned into P (frozen) and P' (trained with hard negatives), and at test time base classes and new
classes are routed to differently weighted prompts. Logits are always the host's own three steps
(``trainers/host_api/interface.py``) under the chosen prompt values. Nothing here names a host.
"""

import torch

from trainers.dpc.config import check_dpc_config, map_reference_keys
from trainers.dpc.loss import batch_classes, symmetric_infonce
from trainers.dpc.negative_pool import build_negative_pool
from trainers.dpc.negatives import select_negatives
from trainers.dpc.prompts import DualPrompts, dataset_identity, routed_weight, routes_to_base
from trainers.dpc.stage1 import (
    EveryKey,
    given_keys,
    inherit_host,
    inherit_stage1_host,
    read_stage1_checkpoint,
    stage1_checkpoint,
)
from trainers.dpc.steps import BatchesWithNext, ScoredBatch, ScoresOnHost, StepAhead
from trainers.engine import TRAINER_REGISTRY, get_cfg_default
from trainers.engine.clip_trainer import ClipTrainer
from trainers.engine.config import extend_cfg
from trainers.engine.optim import build_lr_scheduler, build_optimizer
from trainers.engine.prompt_shape import BACKBONE_KEY, prompt_shape_keys
from trainers.engine.upstream import InputRun
from trainers.evaluation.scoring import FeatureScorer
from trainers.host_api.host_trainer import host_model_class, host_trainer_class
from trainers.host_api.interface import HostModel, build_host
from trainers.host_api.settings import INPUT_KEYS, host_record
from trainers.run.checkpoints import load_checkpoint
from trainers.run.config_keys import ConfigError, get_key


@TRAINER_REGISTRY.register()
class DPC(ClipTrainer):
    registered_name = "dual_prompts"
    default_host = None  # aliases of the reference code fix their host

    @classmethod
    def evaluation_only_keys(cls, cfg):
        """The keys that change only what a trained run's test computes, not its training: ω_n always (the weight of
        P' on new classes), ω_b in ``mixed`` mode (there it weights P' on base classes only; in ``parallel`` mode it
        scales the training objective). A sweep over them evaluates one trained run (``tools.pipeline --sweep``)."""
        keys = ["TRAINER.DPC.WEIGHT_NEW"]
        if cfg.TRAINER.DPC.BASE_PROMPT == "mixed":
            keys.append("TRAINER.DPC.WEIGHT_BASE")
        return tuple(keys)

    def __init__(self, cfg):
        for note in self.resolve_config(cfg):
            print(note)
        check_dpc_config(cfg.TRAINER.DPC)
        if not cfg.TRAINER.DPC.DHNO:
            print("TRAINER.DPC.DHNO False: P' trains with the host's own loss on the anchors (two-step tuning alone: "
                  "no scoring, no hard negatives)")
        self.host_class = host_model_class(cfg.TRAINER.DPC.HOST) if cfg.TRAINER.DPC.HOST else None
        self.stage1_loaded = False
        self.trained_on = dataset_identity(cfg)
        super().__init__(cfg)

    @classmethod
    def resolve_config(cls, cfg, given=None):
        """Settle what the command line leaves open: the reference code's names (its trainer aliases fix the host,
        its ``SPLE.*`` keys map onto DPC's), then the host as the stage-1 checkpoint records it for every key the
        run does not give (``stage1.py``; ``given`` from ``build_cfg``, None once the config is built)."""
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
        notes += inherit_stage1_host(cfg, EveryKey() if given is None else given)
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
    def input_runs(cls, cfg, training=True):
        """The stage-1 run (which must have finished, to train on it), and what the host reads (a teacher)."""
        dpc = cfg.TRAINER.DPC
        host = host_trainer_class(dpc.HOST).input_runs(cfg, training) if dpc.HOST else []
        if not dpc.BACKBONE_DIR:
            return host
        stage1 = InputRun("TRAINER.DPC.BACKBONE_DIR", dpc.BACKBONE_DIR, must_be_finished=training,
                          allowed_by="TRAINER.DPC.ALLOW_UNFINISHED_STAGE1 True", allowed=dpc.ALLOW_UNFINISHED_STAGE1,
                          record_field="stage1", read=read_stage1_checkpoint)
        return [stage1, *host]

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
        notes = inherit_host(cfg, given_keys(cfg, extend_cfg(get_cfg_default())), record, source)
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
        return build_negative_pool(self.cfg, self.dm.dataset, self.device)

    # ---- training ------------------------------------------------------------------------------------

    def before_train(self):
        if self.negative_pool is None and self.dpc_cfg.DHNO:  # first: a bad pool is reported before outputs are touched
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
        At omega_b = 0, P' has no weight on base classes (``inference_weight``: P alone, the host's base accuracy,
        as in mixed mode), so no factor follows from it: P' trains unscaled (it still serves new classes at
        omega_n > 0).
        """
        dpc = self.dpc_cfg
        return 1.0 / dpc.WEIGHT_BASE if dpc.BASE_PROMPT == "parallel" and dpc.WEIGHT_BASE > 0 else 1.0

    def host_loss_step(self, batch):
        """One step without DHNO (``TRAINER.DPC.DHNO False``): the host's own loss of P' on the anchors; nothing
        is scored and no negative is drawn or loaded, so the step costs a host step."""
        images, labels = self.parse_batch_train(batch)
        with self.autocast():
            loss = self.prompts.run(self.prompts.parallel_values(), "loss", images, labels).total
        self.backward_and_update(loss * self.objective_scale)
        if (self.batch_idx + 1) == self.num_batches:
            self.update_lr()
        return {"loss": loss.item()}

    def forward_backward(self, batches):
        """One DHNO step; ``batches`` is the step's batch and the next one. The order is ``steps.py``'s."""
        batch, upcoming = batches
        if not self.dpc_cfg.DHNO:
            return self.host_loss_step(batch)
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
        return routes_to_base(self.cfg, self.trained_on)

    def inference_weight(self):
        return routed_weight(self.dpc_cfg, self.routes_to_base())

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

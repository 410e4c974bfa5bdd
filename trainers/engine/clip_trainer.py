"""``ClipTrainer``: what the project adds on top of the seam's ``TrainerX``, under Dassl and the built-in runtime.

- precision: ``PREC`` of the trainer's config node, with fp32 forced on CPU and amp through a GradScaler;
- the input size taken from the CLIP weights;
- slim checkpoints (learnable tensors only) that also carry the random-generator states, a resume point
  saved every epoch (only the latest is kept besides Dassl's), and loading that drops class-dependent
  buffers so base-class checkpoints evaluate on new classes;
- the run's identity and id in every checkpoint and in ``results.json``; resume refuses another run's
  checkpoint; no non-finite prompt or logit is ever saved or recorded;
- ``results.json`` written atomically after the final test: the marker that a run finished;
- several processes under ``torchrun`` (``trainers/run/distributed.py``).
"""
from __future__ import annotations

import contextlib
import os
import threading
import time
from collections import Counter
from typing import Any, ClassVar, Container, Optional

import torch

from datasets.atomic_write import disk_is_full, remove_leftovers, uninterrupted
from datasets.image_errors import NamingDatasetWrapper
from datasets.pickle_safety import trusted_reads
from datasets.toolbox import DataManager, check_transform_names
from trainers.engine import TRAINER_REGISTRY, TrainerX
from trainers.engine.epoch import run_epoch
from trainers.engine.identity import identity_differences, run_identity
from trainers.engine.prompt_shape import prompt_shape_keys
from trainers.engine.upstream import InputRun
from trainers.engine.value_ranges import check_value_ranges
from trainers.evaluation.feature_cache import FeatureCache, encoder_key
from trainers.evaluation.scoring import FeatureScorer, ModelInference, ScoredBatches
from trainers.prompted_clip import input_resolution, load_clip
from trainers.run import distributed
from trainers.run.checkpoints import BEST_FILE, latest_checkpoint, load_checkpoint, save_checkpoint
from trainers.run.config_keys import ConfigError, get_key, has_key
from trainers.run.console_log import progress_bar
from trainers.run.record import build_record, new_run_id, remove_results, write_results
from trainers.run.rng import capture_rng_state, restore_rng_state

PRECISIONS = ("fp16", "fp32", "amp")


def _quiet_events_thread(hook):
    """``threading.excepthook`` without the traceback of TensorBoard's writer thread failing to write: the main
    thread meets the same error when it next touches the writer, and says it in one line."""
    if getattr(hook, "quiets_events_thread", False):
        return hook

    def quiet(args):
        if type(args.thread).__name__ == "_AsyncWriterThread" and isinstance(args.exc_value, OSError):
            return
        hook(args)
    quiet.quiets_events_thread = True
    return quiet


def _same_trainer(recorded, current):
    """One trainer, or an alias of it (the reference code's names subclass DPC); unknown names are not judged."""
    names = TRAINER_REGISTRY.registered_names()
    if recorded not in names or current not in names:
        return True
    a, b = TRAINER_REGISTRY.get(recorded), TRAINER_REGISTRY.get(current)
    return issubclass(a, b) or issubclass(b, a)


def backbone_key(name):
    """A model name as it is; a weights file by its file name (the same file may be read from another folder)."""
    return os.path.basename(name) if name.endswith((".pt", ".pth")) else name


class ClipTrainer(TrainerX):
    """Every trainer of the project: Dassl's ``TrainerX`` loop with what the module docstring lists, under both
    runtimes. The invariant: what a run computes is decided by its resolved config alone, before any data or
    model is built (so ``build_cfg`` prints, hashes and records what runs, and the pipeline can compute a planned
    run's identity without building it).

    A subclass defines (Dassl's hooks, called by ``TrainerX``):
    - ``config_node``: its node under ``cfg.TRAINER`` (``PREC`` is read there), or a property;
    - ``build_model()``: build the model, register each learnable module with ``register_model`` (name, module,
      optimiser, scheduler): exactly what is registered is optimised and checkpointed;
    - ``forward_backward(batch) -> dict[str, float]``: one step (``backward_and_update`` steps the optimisers),
      returning the numbers the log prints;
    - ``model_inference(images) -> logits``, or ``test_scorer`` below.

    It may override (the default in brackets):
    - ``resolve_config(cfg, given) -> notes`` (classmethod, called by ``build_cfg`` before the config is frozen,
      again by DPC's ``__init__``; idempotent): settle keys that depend on the trainer [nothing];
    - ``identity_nodes(cfg) -> nodes``, ``identity_extra(cfg) -> dict`` (classmethods, called by
      ``trainers/engine/identity.py`` for checkpoints, ``results.json`` and the pipeline): the ``cfg.TRAINER`` nodes
      the config hash covers [``config_node``], extra identity fields [none];
    - ``dataset_opts(cfg) -> [KEY, VALUE, ...]`` (classmethod, called by ``build_cfg`` before the options): per-dataset
      settings [none];
    - ``evaluation_only_keys(cfg) -> keys`` (classmethod, called by the pipeline's sweeps): the keys that change only
      what a trained run's test computes, so a sweep over them evaluates one training [none];
    - ``test_scorer() -> FeatureScorer | None`` (called by ``test``): the logits as a function of image features,
      so text features are computed once and frozen image features cached [None: ``model_inference`` per batch];
    - ``adapt_checkpoint(name, state_dict) -> state_dict`` (classmethod, called by ``load_model`` and on resume):
      map another code's checkpoint layout [as it is];
    - ``checkpoint_extra(name) -> dict`` (called by ``save_model``), ``restore_checkpoint_extra(name, checkpoint)``
      (on resume), ``after_load_checkpoint(name, checkpoint)`` (after ``load_model``): what a checkpoint carries
      beyond the weights [nothing];
    - ``run_record_extra() -> dict`` (called by ``test`` for ``results.json``; extend ``super()``'s).
    """

    config_node: ClassVar[Optional[str]] = None  # the trainer's node under cfg.TRAINER holding PREC, e.g. "COOP"

    def __init__(self, cfg):
        self._wall_start = time.time()
        self._training = False
        self.trained = False  # train() was called: the record is a training run's
        self._precision_noted = False
        # what this run is, from the config as given (before the input size follows the weights)
        self.identity = run_identity(cfg, trainer_class=type(self))
        self.run_id = new_run_id()
        self.loaded = None  # what load_model loaded: model dir, epoch and the run id of its checkpoint
        self.built_on = None  # the run id of the run this one was made from (DPC: its stage 1)
        self.config_overrides = {}  # schedule keys changed on the command line (trainers/launch/overrides.py)
        self.input_states = {}  # the states of the runs it reads, for the record (trainers/engine/upstream.py)
        super().__init__(cfg)
        self.scaler = torch.amp.GradScaler("cuda") if self.precision == "amp" else None

    @classmethod
    def resolve_config(cls, cfg: Any, given: Optional[Container[str]] = None) -> list[str]:
        """Hook for ``trainers.engine.config.build_cfg``: settle keys that depend on the trainer (aliases, defaults)
        in ``cfg`` before it is frozen, printed and recorded; returns notes to log. Must be idempotent. ``given``:
        the dotted keys the run set itself (its yaml files, flags and options, and what the registered resolutions
        set); None for a config built already, whose every value stands."""
        return []

    @classmethod
    def identity_nodes(cls, cfg: Any) -> list[str]:
        """The ``cfg.TRAINER`` nodes this trainer reads: the only ones its identity's config hash covers."""
        node = getattr(cls, "config_node", None)
        return [node] if isinstance(node, str) else []  # (a trainer whose node is a property overrides this)

    @classmethod
    def identity_extra(cls, cfg: Any) -> dict[str, Any]:
        """Hook: extra fields of the run's identity (e.g. the host DPC wraps); a classmethod, so that the
        pipeline can compute the identity a planned run will have."""
        return {}

    @classmethod
    def evaluation_only_keys(cls, cfg: Any) -> tuple[str, ...]:
        """Hook: the config keys that change only what a trained run's test computes (DPC's ω_n); the pipeline
        sweeps them by evaluating one trained run, never by training again."""
        return ()

    @classmethod
    def input_runs(cls, cfg, training=True):
        """The run folders this run reads (``trainers/engine/upstream.py``): here a host's teacher, read as it is."""
        key = getattr(cls, "teacher_dir_key", None)
        path = get_key(cfg, key) if key and has_key(cfg, key) else ""
        return [InputRun(key, path, must_be_finished=False)] if path else []

    def check_cfg(self, cfg):
        """Dassl's hook, called before any data or model is built."""
        super().check_cfg(cfg)
        check_transform_names(cfg.INPUT.TRANSFORMS)
        check_value_ranges(cfg)
        if cfg.MODEL.INIT_WEIGHTS:  # a Dassl key for its own backbones: refused rather than silently ignored
            raise ConfigError(f"MODEL.INIT_WEIGHTS {cfg.MODEL.INIT_WEIGHTS!r} is not used here: CLIP comes from "
                              "MODEL.BACKBONE.NAME, trained prompts from --model-dir or TRAINER.DPC.BACKBONE_DIR")

    # ---- precision and weights -------------------------------------------------------------------------

    @property
    def trainer_cfg(self):
        return getattr(self.cfg.TRAINER, self.config_node) if self.config_node else None

    @property
    def precision(self):
        requested = self.trainer_cfg.PREC if self.trainer_cfg is not None and "PREC" in self.trainer_cfg else "fp32"
        if requested not in PRECISIONS:
            raise ValueError(f"TRAINER.{self.config_node}.PREC must be one of {PRECISIONS}, got {requested!r}")
        if self.device.type == "cpu" and requested != "fp32":
            if not self._precision_noted:
                print(f"PREC {requested} needs CUDA; running in fp32 on the CPU")
                self._precision_noted = True
            return "fp32"
        return requested

    def load_clip(self):
        name = self.cfg.MODEL.BACKBONE.NAME
        print(f"Loading CLIP (backbone: {name})")
        return load_clip(name, self.device, fp32=self.precision != "fp16", cache_dir=self.cfg.MODEL.BACKBONE.CACHE_DIR)

    def build_data_loader(self):
        """The images must match the weights' input resolution, whatever INPUT.SIZE says. (Without a backbone
        yet -- DPC learns it from the checkpoint it evaluates, and then builds its data again -- INPUT.SIZE holds.)"""
        backbone = self.cfg.MODEL.BACKBONE.NAME
        size = input_resolution(backbone, self.cfg.MODEL.BACKBONE.CACHE_DIR) if backbone else None
        if size is not None and tuple(self.cfg.INPUT.SIZE) != (size, size):
            print(f"INPUT.SIZE {tuple(self.cfg.INPUT.SIZE)} -> ({size}, {size}): the backbone's input resolution")
            self.cfg.defrost()
            self.cfg.INPUT.SIZE = (size, size)
            self.cfg.freeze()
        with distributed.main_process_first():
            # Dassl's SimpleTrainer.build_data_loader, with loaders whose read errors name the image
            dm = DataManager(self.cfg, dataset_wrapper=NamingDatasetWrapper)
        self.train_loader_x, self.train_loader_u = dm.train_loader_x, dm.train_loader_u
        self.val_loader, self.test_loader = dm.val_loader, dm.test_loader
        self.num_classes, self.num_source_domains, self.lab2cname = dm.num_classes, dm.num_source_domains, dm.lab2cname
        self.dm = dm
        self.shots_per_class = self.count_shots(dm.dataset.train_x)
        if distributed.is_distributed():
            print(f"Distributed training: {distributed.world_size()} processes, each on its shard of an epoch")
            self.train_loader_x = distributed.shard_loader(self.train_loader_x, self.cfg.SEED)

    def count_shots(self, items):
        """(fewest, most) training images of a class; a warning when the data holds fewer than NUM_SHOTS."""
        counts = Counter(item.label for item in items)
        fewest, most = min(counts.values()), max(counts.values())
        asked = self.cfg.DATASET.NUM_SHOTS
        if 0 < fewest < asked:
            short = sum(count < asked for count in counts.values())
            print(f"Warning: DATASET.NUM_SHOTS is {asked}, but {short} of {len(counts)} classes have fewer training "
                  f"images (the fewest: {fewest}); results.json records the counts")
        return fewest, most

    # The batch contract is the project's (as in the CoOp family): Dassl's TrainerX returns domain labels too.
    def parse_batch_train(self, batch):
        return batch["img"].to(self.device), batch["label"].to(self.device)

    def parse_batch_test(self, batch):
        return batch["img"].to(self.device), batch["label"].to(self.device)

    def before_epoch(self):
        super().before_epoch()
        sampler = getattr(self.train_loader_x, "sampler", None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(self.epoch)

    def run_epoch(self):
        run_epoch(self)  # Dassl's loop and line, plus a line at least every 30 s (trainers/engine/epoch.py)

    def registered_parameters(self, names=None):
        return [p for name in self.get_model_names(names) for p in self._models[name].parameters() if p.requires_grad]

    def model_update(self, names=None):
        if distributed.is_distributed():
            distributed.average_gradients(self.registered_parameters(names))
        super().model_update(names)

    def autocast(self):
        return torch.autocast(self.device.type) if self.precision == "amp" else contextlib.nullcontext()

    def backward_and_update(self, loss, names=None):
        """``model_backward_and_update`` (with its finite-loss check), through the GradScaler under amp."""
        if self.scaler is None:
            self.model_backward_and_update(loss, names)
            return
        self.detect_anomaly(loss)
        self.model_zero_grad(names)
        self.scaler.scale(loss).backward()
        if distributed.is_distributed():
            distributed.average_gradients(self.registered_parameters(names))
        for name in self.get_model_names(names):
            self.scaler.step(self._optims[name])
        self.scaler.update()

    # ---- checkpoints -----------------------------------------------------------------------------------

    def save_model(self, epoch, directory, is_best=False, val_result=None, model_name="", note=""):
        if not distributed.is_main_process():
            return
        for name in self.get_model_names():
            optim, sched = self._optims[name], self._scheds[name]
            save_checkpoint(
                {
                    "state_dict": self._models[name].state_dict(),
                    "epoch": epoch + 1,
                    "optimizer": optim.state_dict() if optim is not None else None,
                    "scheduler": sched.state_dict() if sched is not None else None,
                    "val_result": val_result,
                    "rng_state": capture_rng_state(),
                    "run": {"identity": self.identity, "run_id": self.run_id, "built_on": self.built_on,
                            "backbone": self.cfg.MODEL.BACKBONE.NAME, "max_epoch": self.max_epoch},
                    **self.checkpoint_extra(name),
                },
                os.path.join(directory, name),
                is_best=is_best,
                model_name=model_name,
                note=note,
            )

    def _kept_by_dassl(self, epoch):
        freq = self.cfg.TRAIN.CHECKPOINT_FREQ
        return epoch + 1 == self.max_epoch or (freq > 0 and (epoch + 1) % freq == 0)

    def check_finite(self, when):
        """Refuse to save or record a model whose learnable tensors hold NaN or inf."""
        bad = sorted({name for name, module in self._models.items() for tensor in module.state_dict().values()
                      if tensor.is_floating_point() and not torch.isfinite(tensor).all()})
        if bad:
            raise FloatingPointError(f"The learnable tensors of {bad} hold NaN or inf {when}: training diverged "
                                     f"(OPTIM.LR {self.cfg.OPTIM.LR} may be too large); this state is not saved")

    def after_epoch(self):
        """Dassl's checkpoints, plus a resume point every epoch; earlier resume points are removed. A stop
        signal waits for the end (every model's checkpoint of one epoch, or none)."""
        self.check_finite(f"after epoch {self.epoch + 1}")
        with uninterrupted():
            super().after_epoch()
            if not self._kept_by_dassl(self.epoch):
                self.save_model(self.epoch, self.output_dir, note=" (the resume point; earlier ones removed)")
            previous = self.epoch - 1
            if previous >= 0 and not self._kept_by_dassl(previous) and distributed.is_main_process():
                for name in self.get_model_names():
                    path = os.path.join(self.output_dir, name, f"model.pth.tar-{previous + 1}")
                    if os.path.exists(path):
                        os.remove(path)

    def resume_model_if_exist(self, directory):
        """Continue from the latest checkpoint of every registered model: weights, optimiser, LR schedule and
        random-generator states, so the resumed run repeats the uninterrupted one."""
        names = self.get_model_names()
        paths = [latest_checkpoint(os.path.join(directory, name)) for name in names]
        if not names or None in paths:
            print("No checkpoint found, train from scratch")
            return 0
        print(f"Found checkpoint at {directory} (will resume training)")
        start_epoch = 0
        for i, (name, path) in enumerate(zip(names, paths)):
            print(f'Loading checkpoint from "{path}"')
            checkpoint = load_checkpoint(path)
            self.adopt_run(checkpoint, path)
            self._models[name].load_state_dict(checkpoint["state_dict"])
            for part, holder in (("optimizer", self._optims[name]), ("scheduler", self._scheds[name])):
                if holder is not None and checkpoint.get(part) is not None:
                    holder.load_state_dict(checkpoint[part])
            if i == 0 and "rng_state" in checkpoint:
                restore_rng_state(checkpoint["rng_state"])
                print("Restored the random number generator states")
            self.restore_checkpoint_extra(name, checkpoint)
            start_epoch = checkpoint["epoch"]
        print(f"Previous epoch: {start_epoch}")
        return start_epoch

    def adopt_run(self, checkpoint, path):
        """Continue the run a checkpoint belongs to; refuse a checkpoint of another run, naming what differs."""
        run = checkpoint.get("run")
        if run is None:
            print(f"Note: {path} records no run identity (written by an older version); resuming it as is")
            return
        differences = identity_differences(run["identity"], self.identity)
        if self.built_on is not None and run.get("built_on") != self.built_on:
            differences.append("made from another run of the stage it needs (that run was redone since)")
        if differences:
            raise ConfigError(f"{path} belongs to another run ({'; '.join(differences)}): use another "
                              "--output-dir, or delete that folder to start again")
        self.run_id, self.built_on = run["run_id"], run.get("built_on")

    def load_model(self, directory, epoch=None, read=None):
        """Load every registered model's checkpoint from ``directory``; ``read``: checkpoint files already read
        by the caller (path -> content), not read again."""
        if not directory:
            print("Note that load_model() is skipped as no pretrained model is given")
            return
        for name in self.get_model_names():
            path = self.checkpoint_path(directory, name, epoch)
            checkpoint = (read or {}).get(path) or load_checkpoint(path)
            self.check_checkpoint_source(checkpoint, path)
            print(f'Loading weights to {name} from "{path}" (epoch = {checkpoint.get("epoch")})')
            if self.loaded is None:
                self.loaded = {"model_dir": os.path.abspath(directory), "epoch": checkpoint.get("epoch"),
                               "run_id": (checkpoint.get("run") or {}).get("run_id")}
            state = self.adapt_checkpoint(name, checkpoint["state_dict"])
            recorded = (checkpoint.get("host") or {}).get("settings")
            self.load_learnable_state(self._models[name], state, path,
                                      prompt_shape_keys(self.cfg, self.config_node, recorded))
            self.after_load_checkpoint(name, checkpoint)

    def check_checkpoint_source(self, checkpoint, path):
        """Refuse weights trained by another trainer or on another CLIP backbone (prompts of the same shape would
        load and give a wrong number). Checkpoints that do not record it (the reference code's, older ones) load."""
        run = checkpoint.get("run") or {}
        trained_by, here = (run.get("identity") or {}).get("trainer"), self.cfg.TRAINER.NAME
        if trained_by and not _same_trainer(trained_by, here):
            raise ConfigError(f"--model-dir: {path} was trained by {trained_by}, not {here}: evaluate it with "
                              f"--trainer {trained_by} (and its config)")
        backbone, used = run.get("backbone"), self.cfg.MODEL.BACKBONE.NAME
        if backbone and used and backbone_key(backbone) != backbone_key(used):
            raise ConfigError(f"--model-dir: {path} was trained on the backbone {backbone}, not "
                              f"{self.cfg.MODEL.BACKBONE.NAME}: set MODEL.BACKBONE.NAME {backbone}")

    @staticmethod
    def checkpoint_path(directory, name, epoch=None, prefer_latest=False,
                        hint="check --model-dir and --load-epoch"):
        """``model.pth.tar-<epoch>``; without an epoch ``model-best.pth.tar`` or the latest checkpoint, in the
        order ``prefer_latest`` says."""
        model_dir = os.path.join(directory, name)
        if epoch is not None:
            candidates = [os.path.join(model_dir, f"model.pth.tar-{epoch}")]
        else:
            candidates = [os.path.join(model_dir, BEST_FILE), latest_checkpoint(model_dir)]
            if prefer_latest:
                candidates.reverse()
        for candidate in candidates:
            if candidate and os.path.isfile(candidate):
                return candidate
        found = sorted(os.listdir(model_dir)) if os.path.isdir(model_dir) else []
        wanted = os.path.basename(candidates[0]) if candidates[0] else "model.pth.tar-<epoch>"
        raise FileNotFoundError(f"No checkpoint {wanted} in {model_dir}; found {found or 'nothing'} ({hint})")

    @classmethod
    def adapt_checkpoint(cls, name: str, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Hook: the state to load into the registered model ``name`` from a checkpoint's ``state_dict`` (host
        trainers map the reference's whole-model layouts through their model's ``adapt_state_dict``)."""
        return state_dict

    def checkpoint_extra(self, name: str) -> dict[str, Any]:
        """Hook: extra entries for the checkpoint of the registered model ``name``."""
        return {}

    def after_load_checkpoint(self, name: str, checkpoint: dict[str, Any]) -> None:
        """Hook: called with the whole checkpoint after ``load_model`` loaded its weights."""

    def restore_checkpoint_extra(self, name: str, checkpoint: dict[str, Any]) -> None:
        """Hook: called with the checkpoint a resumed training run continues from (see ``checkpoint_extra``)."""

    @staticmethod
    def load_learnable_state(module, state_dict, path="", shape_keys=()):
        """Load the learnable tensors; class-dependent buffers in the file (e.g. ``token_prefix``) are dropped.
        A tensor of another shape is a ``ConfigError`` naming ``shape_keys``, the settings to match."""
        own = module.state_dict()
        expected = set(own)
        class_dependent = {name for name, _ in module.named_buffers()} - expected  # non-persistent buffers
        state = {k: v for k, v in state_dict.items() if k not in class_dependent}
        missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
        if missing or unexpected:
            raise KeyError(f"Checkpoint {path} does not fit {type(module).__name__}: missing {missing}, "
                           f"unexpected {unexpected}")
        wrong = [(k, list(v.shape), list(own[k].shape)) for k, v in state.items() if v.shape != own[k].shape]
        if wrong:
            name, there, here = wrong[0]
            keys = ", ".join(shape_keys) or "the settings of the run that wrote it"
            raise ConfigError(f"Checkpoint {path} holds prompts of another shape ({name} is {there} there, {here} "
                              f"here): set these keys as that run had them: {keys}")
        module.load_state_dict(state, strict=False)

    # ---- the run record --------------------------------------------------------------------------------

    def before_train(self):
        if self.max_epoch < 1:
            raise ConfigError(f"OPTIM.MAX_EPOCH is {self.max_epoch}: nothing to train (use --eval-only to evaluate)")
        self._training = self.trained = True
        super().before_train()  # resumes, or refuses another run's checkpoint, before anything is removed
        if distributed.is_main_process():
            remove_results(self.output_dir)  # a run being (re)trained is not finished
            for folder in [self.output_dir, *(os.path.join(self.output_dir, n) for n in self.get_model_names())]:
                for name in remove_leftovers(folder):
                    print(f"Removed {os.path.join(folder, name)}, left by a write that was cut short")

    # ---- Dassl's TensorBoard writer (the built-in runtime has none; no scalars are written here) ------------

    def init_writer(self, log_dir):
        """Its events file is not the run's record: a write it cannot do (a full disk) ends it in one line and the
        run goes on, as the log does (``trainers/run/console_log.py``); the next checkpoint names the disk."""
        threading.excepthook = _quiet_events_thread(threading.excepthook)
        self._events_dir = log_dir
        try:
            super().init_writer(log_dir)
        except OSError as err:
            self._events_failed(err)

    def close_writer(self):
        try:
            super().close_writer()
        except OSError as err:
            self._events_failed(err)

    def _events_failed(self, err):
        reason = "no space left on its file system" if disk_is_full(self._events_dir, err) else err.strerror
        print(f"Could not write TensorBoard's events in {self._events_dir} ({reason}); they stop there")
        self._writer = None

    def after_train(self):
        self._training = False
        if distributed.is_distributed() and not distributed.parameters_agree(self.registered_parameters()):
            raise RuntimeError("The processes ended training with different prompts: gradients were not averaged")
        super().after_train()

    @torch.no_grad()
    def test(self, split=None):
        """Dassl's test loop; after the final test (not a model-selection one) ``results.json`` is written."""
        split = split or self.cfg.TEST.SPLIT
        if not distributed.is_main_process():
            return 0.0  # rank 0 evaluates (and selects the best epoch) for all processes
        self.set_model_mode("eval")
        self.evaluator.reset()
        loader = self.val_loader if split == "val" and self.val_loader is not None else self.test_loader
        print(f"Evaluate on the *{split}* set")
        num_samples, finite = 0, torch.tensor(True, device=self.device)
        for logits, labels in progress_bar(self.test_logits(loader), enabled=self.cfg.VERBOSE):
            finite &= torch.isfinite(logits).all()  # no sync per batch
            self.evaluator.process(logits, labels)
            num_samples += labels.shape[0]
        results = self.evaluator.evaluate()
        for name, value in results.items():  # Dassl's TensorBoard tags: test/accuracy, val/accuracy, ...
            self.write_scalar(f"{split}/{name}", value, self.epoch)
        if not self._training and split == self.cfg.TEST.SPLIT and distributed.is_main_process():
            self.check_finite("at the final test")
            if not finite:
                raise FloatingPointError("The test logits hold NaN or inf: the model diverged; no results.json written")
            record = build_record(self.cfg, split, results, num_samples, time.time() - self._wall_start,
                                  extra=self.run_record_extra())
            print(f"Results saved to {write_results(self.output_dir, record)}")
        return list(results.values())[0]

    def test_scorer(self) -> Optional[FeatureScorer]:
        """Hook: a ``FeatureScorer`` (``trainers/evaluation/scoring.py``) when the test's logits are a function of the
        images' features, so that constant text features are computed once and frozen image features can be
        cached; None: ``model_inference`` on every batch."""
        return None

    def test_logits(self, loader):
        """(logits, labels) per test batch, through the ``test_scorer`` and the feature cache where there is one."""
        scorer = self.test_scorer()
        if scorer is None:
            return ModelInference(self, loader)
        return ScoredBatches(self, loader, scorer, self.feature_cache(scorer, loader))

    def feature_cache(self, scorer, loader):
        """The ``TEST.FEATURE_CACHE`` store for the scorer's frozen image encoder, or None."""
        folder = self.cfg.TEST.get("FEATURE_CACHE", "")
        if not folder or scorer.frozen_encoder is None:
            return None
        key = encoder_key(scorer.frozen_encoder, loader.dataset.transform, self.device, self.precision == "amp")
        return FeatureCache(folder, key)

    def run_record_extra(self) -> dict[str, Any]:
        evaluation = not self.trained  # test() without train(): --eval-only
        extra = {"device": str(self.device), "precision": self.precision, "run_id": self.run_id,
                 "classnames": list(self.dm.dataset.classnames),  # in label order: what load_run predicts among
                 "identity": {**self.identity, "eval_only": evaluation}, "built_on": self.built_on}
        if self.config_overrides:
            extra["overrides"] = self.config_overrides
        extra.update(self.input_states)  # e.g. "stage1": "unfinished (epoch 1 of 6)"
        extra.update(getattr(self.dm.dataset, "record_notes", {}))  # a generated split, skipped images
        if trusted_reads():
            extra["trusted_pickled_files"] = trusted_reads()
        if not evaluation:
            extra["train_images_per_class"] = {"fewest": self.shots_per_class[0], "most": self.shots_per_class[1]}
        else:
            extra["evaluated"] = self.loaded
            if self.loaded is None and self.registered_parameters():
                print("Warning: no weights were loaded (no --model-dir): the untrained prompt was evaluated")
                extra["untrained"] = True
        return extra

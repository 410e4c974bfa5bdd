"""The list of train.py runs a benchmark needs, in an order where every run comes after the runs it needs.

Base-to-new, per dataset and seed:
    host-train  the host on the base classes; its final test is the host's base accuracy
    host-test   --eval-only on the new classes from the host-train checkpoint
    dpc-train   DPC over the host-train checkpoint, on the base classes; its final test is DPC's base accuracy
    dpc-test    --eval-only on the new classes from the dpc-train checkpoint
A host whose model needs another trained model (PromptKD's frozen teacher, ``HostTrainer.teacher_run``) gets
    teacher-train  that run (one per dataset and protocol, seed 1, shared by every seed), before host-train
Cross-dataset / DG: the same four stages with ImageNet (all classes) as the training set and one test run per
target dataset. Few-shot: host-train and dpc-train on all classes, per number of shots.

``--load-epoch`` of a test (and ``TRAINER.DPC.BACKBONE_EPOCH`` of dpc-train) is the ``OPTIM.MAX_EPOCH`` the
training run's config resolves to; a training run that keeps its best validation epoch (``TEST.FINAL_MODEL
best_val``) is evaluated and built on from its ``model-best.pth.tar``.
"""
import os
import shlex
from dataclasses import dataclass, field
from typing import Callable, List, Optional

from yacs.config import CfgNode

from tools import output_folders as layout
from tools.pipeline import presets
from tools.pipeline.configs import (
    keeps_best_val,
    max_epoch,
    planned_config,
    registered_trainers,
    resolve_dataset_config,
    resolve_trainer_config,
)
from tools.pipeline.variants import setting_opts, training_settings, with_settings
from trainers.launch.main import FLAG_KEYS
from trainers.run.checkpoints import BEST_FILE
from trainers.run.config_keys import ConfigError
from trainers.run.paths import REPO_DIR
from trainers.run.record import load_record

STAGES = ("teacher-train", "host-train", "host-test", "dpc-train", "dpc-test")


@dataclass
class Spec:
    """What to run: one host, its configs, datasets x seeds x shots, and where the data and outputs are."""

    host: str
    root: str
    out: str
    mode: str = layout.BASE2NEW
    datasets: list = None  # names or yaml paths; None = the benchmark's list (targets for cross-dataset / DG)
    seeds: list = field(default_factory=lambda: list(presets.DEFAULT_SEEDS))
    shots: list = None  # None = 16, or 1 2 4 8 16 for few-shot
    source: str = presets.XD_SOURCE  # cross-dataset / DG training set
    host_config: str = ""  # name or path for every dataset; "" = the host's preset
    host_config_for: dict = field(default_factory=dict)  # dataset -> config name or path
    dpc_config: str = ""  # "" = presets.dpc_config_name(host)
    opts: list = field(default_factory=list)  # KEY VALUE pairs for every run
    host_opts: list = field(default_factory=list)
    dpc_opts: list = field(default_factory=list)
    stages: tuple = STAGES
    teacher_config: str = ""  # "" = the host's teacher_run config
    teacher_opts: list = field(default_factory=list)
    variants: list = field(default_factory=lambda: [{}])  # DPC's settings per variant (``variants.py``); {} = plain


@dataclass
class Run:
    """One train.py run, as data: its command line is derived (``argv``), never parsed back."""

    key: str  # readable and unique: <phase dir>/<dataset>/shots_<K>/<Method>/<cfg>/seed<S>
    stage: str
    dataset: str
    seed: int
    shots: int
    method: str
    output_dir: str
    trainer: str
    root: str
    dataset_config: str  # path, as train.py is given it
    config_file: str  # path, as train.py is given it
    opts: List[str] = field(default_factory=list)  # KEY VALUE pairs
    eval_only: bool = False
    model_dir: str = ""  # the checkpoint an --eval-only run evaluates ("" for zero-shot)
    load_epoch: Optional[int] = None
    needs: List["Run"] = field(default_factory=list)  # the runs whose checkpoints this one loads
    warn: Callable[[str], None] = field(default=print, repr=False, compare=False)  # for configs not checkable here
    _config: tuple = field(default=None, init=False, repr=False, compare=False)  # (state of the needs, config)

    def config(self) -> Optional[CfgNode]:
        """The config train.py builds for this run, from the run's own fields (never from its command line);
        None for a trainer not registered here. Built once per state of the runs it needs: DPC's config takes
        its host from the stage-1 checkpoint, so it is built again once that run has finished."""
        needs_state = tuple((load_record(need.output_dir)[0] or {}).get("run_id") for need in self.needs)
        if self._config is None or self._config[0] != needs_state:
            flags = {FLAG_KEYS[name]: value for name, value in (
                ("root", self.root), ("seed", self.seed), ("trainer", self.trainer), ("output_dir", self.output_dir))}
            self._config = (needs_state, planned_config(self.trainer, self.config_files(), self.opts, flags,
                                                        warn=self.warn))
        return self._config[1]

    def config_files(self) -> List[str]:
        return [path if os.path.isabs(path) else os.path.join(REPO_DIR, path)
                for path in (self.dataset_config, self.config_file)]

    def max_epoch(self) -> int:
        """The epoch this run ends at: the ``--load-epoch`` of the runs that evaluate its checkpoint."""
        return max_epoch(self.config(), self.config_files(), self.opts)

    def keeps_best_val(self) -> bool:
        return keeps_best_val(self.config(), self.config_files())

    @property
    def argv(self) -> List[str]:
        """The anchors' flags, then --eval-only ..., then the KEY VALUE options."""
        flags = ["--eval-only"] if self.eval_only else []
        if self.model_dir:
            flags += ["--model-dir", self.model_dir]
        if self.load_epoch is not None:
            flags += ["--load-epoch", str(self.load_epoch)]
        return ["--root", self.root, "--seed", str(self.seed), "--trainer", self.trainer,
                "--dataset-config-file", self.dataset_config, "--config-file", self.config_file,
                "--output-dir", self.output_dir, *flags, *[str(v) for v in self.opts]]

    def command(self) -> List[str]:
        return ["python", "train.py", *self.argv]

    def command_line(self) -> str:
        return shlex.join(self.command())


def _str_opts(opts):
    return [str(v) for v in opts]


class _Planner:
    def __init__(self, spec, warn=print):
        if spec.mode not in layout.MODES:
            raise ValueError(f"Unknown mode {spec.mode!r}; choose from {', '.join(layout.MODES)}")
        unknown = set(spec.stages) - set(STAGES)
        if unknown:
            raise ValueError(f"Unknown stages {sorted(unknown)}; choose from {', '.join(STAGES)}")
        known = registered_trainers()
        if spec.host not in known:
            raise ConfigError(f"Unknown host trainer {spec.host!r}: not registered in trainers/ (registered: "
                              f"{', '.join(sorted(known))})")
        self.spec = spec
        self.warn = warn
        self.root = os.path.abspath(spec.root)
        self.out = os.path.abspath(spec.out)
        # DPC's config is needed only when a DPC stage runs: host-only runs work before DPC has configs.
        self.with_dpc = any(stage.startswith("dpc") for stage in spec.stages)
        self.dpc_config = None
        self.teacher = presets.host_teacher(spec.host)  # (trainer, config, key) or None
        self.protocol_opts = presets.host_protocol_opts(spec.host, spec.mode)  # e.g. MMRL's TASK
        if self.with_dpc:
            self.dpc_config = resolve_trainer_config(spec.dpc_config or presets.dpc_config_name(spec.host),
                                                     layout.DPC_TRAINER)

    # ---- configs, options, directories -----------------------------------------------------------------

    def host_config(self, dataset_name):
        value = self.spec.host_config_for.get(dataset_name) or self.spec.host_config
        if not value:
            value = presets.host_config_name(self.spec.host, self.spec.mode, dataset_name)
        return resolve_trainer_config(value, self.spec.host)

    def host_opts(self):
        return _str_opts(self.spec.opts) + _str_opts(self.spec.host_opts)

    def dpc_opts(self, backbone_dir, backbone_epoch):
        return _str_opts(self.spec.opts) + _str_opts(self.spec.dpc_opts) + [
            "TRAINER.DPC.HOST", self.spec.host, "TRAINER.DPC.BACKBONE_DIR", backbone_dir,
            "TRAINER.DPC.BACKBONE_EPOCH", str(backbone_epoch)]

    def _run(self, stage, phase, dataset_cfg, seed, shots, config, opts, evaluate=None, needs=(), trainer=None,
             settings=None):
        """One train.py run; ``evaluate`` = (training run, its last epoch or None for its best) for an --eval-only
        run; ``trainer`` another trainer than the host's or DPC (a teacher run's); ``settings`` a variant's
        (``variants.py``): added to the options and naming the ``<cfg>`` folder."""
        dpc = stage.startswith("dpc")
        method = trainer or layout.method_dir_name(self.spec.host, dpc)
        trainer = trainer or (layout.DPC_TRAINER if dpc else self.spec.host)
        settings = settings or {}
        opts = [*opts, *setting_opts(settings)]
        output_dir = layout.run_dir(self.out, self.spec.mode, phase, dataset_cfg.name, shots, method,
                                    layout.variant_dir_name(config.name, settings), seed)
        model_dir, epoch = (evaluate[0].output_dir, evaluate[1]) if evaluate else ("", None)
        return Run(os.path.relpath(output_dir, self.out), stage, dataset_cfg.name, seed, shots, method, output_dir,
                   trainer, self.root, dataset_cfg.path, config.path, list(opts), eval_only=evaluate is not None,
                   model_dir=model_dir, load_epoch=epoch, needs=list(needs), warn=self.warn)

    # ---- the four stages -------------------------------------------------------------------------------

    def teacher_train(self, dataset_cfg, shots, subsample):
        """The teacher run the host's model needs (None for most hosts), trained as the teacher's own host."""
        if self.teacher is None:
            return None
        trainer, config_name, _ = self.teacher
        config = resolve_trainer_config(self.spec.teacher_config or config_name, trainer)
        opts = _str_opts(self.spec.opts) + _str_opts(self.spec.teacher_opts) + [
            "DATASET.NUM_SHOTS", str(shots), "DATASET.SUBSAMPLE_CLASSES", subsample]
        teacher = self._run("teacher-train", "teacher", dataset_cfg, presets.TEACHER_SEED, shots, config, opts,
                            trainer=trainer)
        teacher.config()  # its config must load
        return teacher

    def teacher_opts(self, teacher):
        return [self.teacher[2], teacher.output_dir] if teacher is not None else []

    def stage1_checkpoint(self, host_train, e1, best):
        """What DPC starts from: the host's last epoch, or its best-validation checkpoint file."""
        if not best:
            return host_train.output_dir, e1
        from trainers.host_api.host_trainer import host_model_class  # imports torch: only when a plan is built

        return os.path.join(host_train.output_dir, host_model_class(self.spec.host).checkpoint_name, BEST_FILE), -1

    def train_pair(self, dataset_cfg, seed, shots, subsample):
        """host-train and dpc-train (None without DPC stages) on one dataset, with the epochs their tests load
        (None: their best-validation checkpoint)."""
        protocol = ["DATASET.NUM_SHOTS", str(shots), "DATASET.SUBSAMPLE_CLASSES", subsample, *self.protocol_opts]
        config = self.host_config(dataset_cfg.name)
        teacher = self.teacher_train(dataset_cfg, shots, subsample)
        opts = self.host_opts() + self.teacher_opts(teacher) + protocol
        host_train = self._run("host-train", "train", dataset_cfg, seed, shots, config, opts,
                               needs=[teacher] if teacher is not None else [])
        e1 = host_train.max_epoch()
        best = host_train.keeps_best_val()
        if not self.with_dpc:
            return Trained(host_train, None if best else e1, [])
        opts = self.dpc_opts(*self.stage1_checkpoint(host_train, e1, best)) + protocol
        return Trained(host_train, None if best else e1, self.dpc_variants(dataset_cfg, seed, shots, opts, host_train))

    def dpc_variants(self, dataset_cfg, seed, shots, opts, host_train):
        """Each variant's run in the training phase, with the training it evaluates: the training itself where the
        variant's folder is its training's, else an --eval-only run of it (``variants.py``)."""
        plain = self._run("dpc-train", "train", dataset_cfg, seed, shots, self.dpc_config, opts, needs=[host_train])
        trainings, variants = {}, []
        for settings in self.spec.variants:
            training = training_settings(plain.config(), settings, self.evaluation_only_keys(plain, settings))
            name = layout.variant_dir_name(self.dpc_config.name, training)
            if name not in trainings:
                run = plain if not training else self._run("dpc-train", "train", dataset_cfg, seed, shots,
                                                             self.dpc_config, opts, needs=[host_train],
                                                             settings=training)
                trainings[name] = (run, None if run.keeps_best_val() else run.max_epoch())
            trained, epoch = trainings[name]
            own = trained if settings == training else self._run(
                "dpc-test", "train", dataset_cfg, seed, shots, self.dpc_config, opts, evaluate=(trained, epoch),
                needs=[trained], settings=settings)
            variants.append(DpcVariant(settings, trained, epoch, own))
        return variants

    @staticmethod
    def evaluation_only_keys(plain, settings):
        """The keys the DPC trainer declares evaluation-only under the variant's settings (its BASE_PROMPT)."""
        cfg = plain.config()
        if cfg is None:
            return ()
        from trainers.engine import TRAINER_REGISTRY  # imports torch: only when a plan is built

        return TRAINER_REGISTRY.get(plain.trainer).evaluation_only_keys(with_settings(cfg, settings))

    def test_pair(self, dataset_cfg, seed, shots, trained, protocol):
        """host-test and each variant's dpc-test (none without DPC stages), evaluated on ``dataset_cfg``."""
        host_train, e1 = trained.host, trained.host_epoch
        protocol = [*protocol, *self.protocol_opts]
        config = self.host_config(host_train.dataset)  # the config the checkpoint was trained with
        teacher = next((run for run in host_train.needs if run.stage == "teacher-train"), None)
        opts = self.host_opts() + self.teacher_opts(teacher) + protocol
        host_test = self._run("host-test", "test", dataset_cfg, seed, shots, config, opts,
                              evaluate=(host_train, e1), needs=[host_train])
        dpc_opts = self.dpc_opts(*self.stage1_checkpoint(host_train, e1, e1 is None)) + protocol
        dpc_tests = [self._run("dpc-test", "test", dataset_cfg, seed, shots, self.dpc_config, dpc_opts,
                               evaluate=(variant.trained, variant.epoch), needs=[variant.trained],
                               settings=variant.settings)
                     for variant in trained.variants]
        return host_test, dpc_tests

    # ---- the benchmarks --------------------------------------------------------------------------------

    def datasets(self):
        names = self.spec.datasets or presets.default_datasets(self.spec.mode)
        return [resolve_dataset_config(name) for name in names]

    def shots(self):
        return [int(k) for k in (self.spec.shots or presets.default_shots(self.spec.mode))]

    def base2new(self):
        runs = []
        for dataset_cfg in self.datasets():
            for shots in self.shots():
                for seed in self.spec.seeds:
                    trained = self.train_pair(dataset_cfg, seed, shots, "base")
                    new = ["DATASET.NUM_SHOTS", str(shots), "DATASET.SUBSAMPLE_CLASSES", "new"]
                    host_test, dpc_tests = self.test_pair(dataset_cfg, seed, shots, trained, new)
                    runs += [trained.host, host_test]
                    for variant, dpc_test in zip(trained.variants, dpc_tests):
                        runs += [*variant.training_runs(), dpc_test]
        return runs

    def transfer(self):
        """Cross-dataset and DG: train on the source (all classes), evaluate on every target (all classes)."""
        source = resolve_dataset_config(self.spec.source)
        targets = self.datasets()
        runs = []
        for shots in self.shots():
            for seed in self.spec.seeds:
                trained = self.train_pair(source, seed, shots, "all")
                tests = [self.test_pair(target, seed, shots, trained, ["DATASET.SUBSAMPLE_CLASSES", "all"])
                         for target in targets]
                runs += [trained.host, *(host_test for host_test, _ in tests)]
                for index, variant in enumerate(trained.variants):
                    runs += [*variant.training_runs(), *(dpc_tests[index] for _, dpc_tests in tests)]
        return runs

    def few_shot(self):
        runs = []
        for dataset_cfg in self.datasets():
            for shots in self.shots():
                for seed in self.spec.seeds:
                    trained = self.train_pair(dataset_cfg, seed, shots, "all")
                    runs += [trained.host, *(run for variant in trained.variants for run in variant.training_runs())]
        return runs


@dataclass
class DpcVariant:
    """One variant of DPC's stage on one dataset, seed and shots: the training it uses (shared by the variants with
    the same training settings) and its own run in the training phase (that training, or an evaluation of it)."""

    settings: dict
    trained: Run
    epoch: Optional[int]  # the epoch its evaluations load; None: its best-validation checkpoint
    own: Run

    def training_runs(self):
        return [self.trained, self.own] if self.own is not self.trained else [self.trained]


@dataclass
class Trained:
    host: Run
    host_epoch: Optional[int]
    variants: List[DpcVariant]


def build_plan(spec, warn=print):
    """Every run of the benchmark in dependency order (a training shared by several variants once);
    ``spec.stages`` selects which of them to execute."""
    planner = _Planner(spec, warn=warn)
    if spec.mode == layout.BASE2NEW:
        runs = planner.base2new()
    elif spec.mode == layout.FEW_SHOT:
        runs = planner.few_shot()
    else:
        runs = planner.transfer()
    return [run for run in _with_needed_teachers(runs) if run.stage in spec.stages]


def _with_needed_teachers(runs):
    """The runs with each teacher run once, right before the first run that needs it; a run planned twice (the
    training of several variants) once, where it first comes."""
    ordered, seen = [], set()
    for run in runs:
        if run is None or run.key in seen:
            continue
        seen.add(run.key)
        for need in run.needs:
            if need.stage == "teacher-train" and need.key not in seen:
                seen.add(need.key)
                ordered.append(need)
        ordered.append(run)
    return ordered

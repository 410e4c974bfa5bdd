"""The benchmarks' dataset lists and each host's usual configs, so that one command reproduces a paper table.

Every value here can be overridden on the pipeline's command line (``--datasets``, ``--host-config``,
``--host-config-for DATASET=CONFIG``, ``--dpc-config``). A host's configs are those its paper used, as its
trainer declares them (``HostTrainer.paper_configs``); a host that declares none needs ``--host-config``.
"""
import os
from dataclasses import dataclass, field

from tools.output_folders import (
    BASE2NEW,
    BASE2NEW_DATASETS,
    CROSS_DATASET,
    CROSS_DATASET_TARGETS,
    DG_TARGETS,
    DOMAIN_GENERALIZATION,
    DPC_TRAINER,
    FEW_SHOT,
    XD_SOURCE,
)
from tools.pipeline.configs import TRAINER_CONFIG_DIR
from trainers.run.paths import REPO_DIR

FEW_SHOT_SHOTS = (1, 2, 4, 8, 16)
DEFAULT_SEEDS = (1, 2, 3)
DEFAULT_SHOTS = 16


def default_datasets(mode):
    """Training datasets (base-to-new, few-shot) or evaluation targets (cross-dataset, DG)."""
    return {
        BASE2NEW: BASE2NEW_DATASETS,
        FEW_SHOT: BASE2NEW_DATASETS,
        CROSS_DATASET: CROSS_DATASET_TARGETS,
        DOMAIN_GENERALIZATION: DG_TARGETS,
    }[mode]


def default_shots(mode):
    return FEW_SHOT_SHOTS if mode == FEW_SHOT else (DEFAULT_SHOTS,)


@dataclass(frozen=True)
class HostPreset:
    base2new: str
    cross: str = ""  # cross-dataset and DG (ImageNet, all classes); "" = the base-to-new config
    few_shot: str = ""  # "" = the base-to-new config
    per_dataset: dict = field(default_factory=dict)  # base-to-new / few-shot overrides by dataset
    few_shot_per_dataset: dict = field(default_factory=dict)  # few-shot overrides of ``few_shot`` by dataset

    def config_for(self, mode, dataset):
        if mode in (CROSS_DATASET, DOMAIN_GENERALIZATION):
            return self.cross or self.per_dataset.get(XD_SOURCE, self.base2new)
        if mode == FEW_SHOT and self.few_shot:
            return self.few_shot_per_dataset.get(dataset, self.few_shot)
        return self.per_dataset.get(dataset, self.base2new)


def host_preset(host):
    """The registered host trainer's declared paper configs, or None."""
    from trainers.engine import TRAINER_REGISTRY  # imports torch: only when a plan is built
    from trainers.host_api.host_trainer import registered_hosts

    configs = TRAINER_REGISTRY.get(host).paper_configs if host in registered_hosts() else None
    return HostPreset(**configs) if configs else None


def host_config_name(host, mode, dataset):
    preset = host_preset(host)
    if preset is None:
        raise KeyError(f"Host {host!r} declares no paper configs (its trainer's paper_configs); "
                       "pass --host-config NAME_OR_PATH")
    return preset.config_for(mode, dataset)


def host_protocol_opts(host, mode):
    """KEY VALUE options every run of ``host`` in ``mode`` takes (``HostTrainer.protocol_opts``), or none."""
    from trainers.engine import TRAINER_REGISTRY  # imports torch: only when a plan is built
    from trainers.host_api.host_trainer import registered_hosts

    if host not in registered_hosts():
        return []
    return [str(value) for value in TRAINER_REGISTRY.get(host).protocol_opts.get(mode, ())]


# The released code trains DPC with the same settings over every host; a host whose paper settings differ gets
# configs/trainers/DPC/<host in lower case>_vit_b16_ep20_batch4.yaml, which then wins.
DPC_CONFIG = "vit_b16_ep20_batch4"


def dpc_config_name(host):
    own = f"{host.lower()}_{DPC_CONFIG}"
    return own if os.path.isfile(os.path.join(REPO_DIR, TRAINER_CONFIG_DIR, DPC_TRAINER, own + ".yaml")) else DPC_CONFIG


# A host whose model needs another trained model (PromptKD's teacher) names that run on its trainer:
# ``teacher_run = (trainer, config)`` and ``teacher_dir_key`` (the key the run directory is given by). One teacher
# run per dataset and protocol serves every seed of the student, as the released teachers do.
TEACHER_SEED = 1


def host_teacher(host):
    """(teacher trainer, its config name, the host's key for the teacher's run directory), or None."""
    from trainers.engine import TRAINER_REGISTRY  # imports torch: only when a plan is built
    from trainers.host_api.host_trainer import registered_hosts

    if host not in registered_hosts():
        return None
    cls = TRAINER_REGISTRY.get(host)
    return (*cls.teacher_run, cls.teacher_dir_key) if cls.teacher_run else None

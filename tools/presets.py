"""The benchmarks' dataset lists and each host's usual configs, so that one command reproduces a paper table.

Every value here can be overridden on the pipeline's command line (``--datasets``, ``--host-config``,
``--host-config-for DATASET=CONFIG``, ``--dpc-config``); a host without a preset needs ``--host-config``.
Host configs are the ones the host's own repository uses for the benchmark (HOSTS.md, "Configs").
"""
from dataclasses import dataclass, field

from .layout import BASE2NEW, CROSS_DATASET, DOMAIN_GENERALIZATION, FEW_SHOT

# The 11 base-to-new datasets, in the order of the paper's table (dataset config file stems).
BASE2NEW_DATASETS = (
    "imagenet", "caltech101", "oxford_pets", "stanford_cars", "oxford_flowers", "food101",
    "fgvc_aircraft", "sun397", "dtd", "eurosat", "ucf101",
)
XD_SOURCE = "imagenet"
CROSS_DATASET_TARGETS = tuple(d for d in BASE2NEW_DATASETS if d != XD_SOURCE)
DG_TARGETS = ("imagenetv2", "imagenet_sketch", "imagenet_a", "imagenet_r")
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

    def config_for(self, mode, dataset):
        if mode in (CROSS_DATASET, DOMAIN_GENERALIZATION):
            return self.cross or self.per_dataset.get(XD_SOURCE, self.base2new)
        if mode == FEW_SHOT and self.few_shot:
            return self.few_shot
        return self.per_dataset.get(dataset, self.base2new)


HOST_PRESETS = {
    # CoOp trains ImageNet for 50 epochs and the others for 200 (vit_b16_ep50_ctxv1 / vit_b16_ctxv1).
    "CoOp": HostPreset("vit_b16_ctxv1", per_dataset={"imagenet": "vit_b16_ep50_ctxv1"}),
    "CoCoOp": HostPreset("vit_b16_c4_ep10_batch1_ctxv1"),
    "KgCoOp": HostPreset("vit_b16_ep100_ctxv1"),
    "MaPLe": HostPreset("vit_b16_c2_ep5_batch4_2ctx", cross="vit_b16_c2_ep5_batch4_2ctx_cross_datasets"),
    "IVLP": HostPreset("vit_b16_c2_ep20_batch4_4+4ctx"),
    "PromptSRC": HostPreset("vit_b16_c2_ep20_batch4_4+4ctx", cross="vit_b16_c2_ep20_batch4_4+4ctx_cross_datasets",
                            few_shot="vit_b16_c2_ep50_batch4_4+4ctx_few_shot"),
    "PromptKD": HostPreset("vit_b16_c2_ep20_batch8_4+4ctx", cross="vit_b16_c2_ep20_batch8_4+4ctx_cross_datasets"),
}


def host_config_name(host, mode, dataset):
    if host not in HOST_PRESETS:
        raise KeyError(f"No preset config for host {host!r} (presets: {', '.join(sorted(HOST_PRESETS))}); "
                       "pass --host-config NAME_OR_PATH")
    return HOST_PRESETS[host].config_for(mode, dataset)


def dpc_config_name(host):
    """DPC's configs carry the host's name: configs/trainers/DPC/<host in lower case>_vit_b16_ep20_batch4.yaml."""
    return f"{host.lower()}_vit_b16_ep20_batch4"

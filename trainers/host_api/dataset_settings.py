"""Per-dataset settings of a host, as data: ``configs/trainers/<trainer>/dataset_settings.yaml``.

Some references set a few keys per dataset in code (MMRL, MMRL++: ``REG_WEIGHT``, ``REP_DIM``, ``BETA``). Here they
are a file: ``TASK -> DATASET.NAME -> {key of the host's node: value}``. ``build_cfg`` applies them after the
config files and before the command line's options (``HostTrainer.dataset_opts``), as those references do, so
their command lines give their settings and an option on the command line still wins.
"""
import os

import yaml

from trainers.run.config_keys import ConfigError

REPO_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FILE_NAME = "dataset_settings.yaml"


def settings_path(trainer_name):
    return os.path.join(REPO_DIR, "configs", "trainers", trainer_name, FILE_NAME)


def read_settings(path):
    try:
        with open(path) as f:
            table = yaml.safe_load(f) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {' '.join(str(err).split())}") from None
    if not isinstance(table, dict) or not all(isinstance(v, dict) for v in table.values()):
        raise ConfigError(f"{path} must map each TASK to {{DATASET.NAME: {{KEY: VALUE}}}}")
    return table


def dataset_opts(trainer_name, node, task, dataset_name):
    """The KEY VALUE pairs of ``trainer_name``'s table for ``task`` and ``dataset_name`` (none if it has no table)."""
    path = settings_path(trainer_name)
    if not os.path.isfile(path):
        return []
    settings = read_settings(path).get(task, {}).get(dataset_name) or {}
    return [item for key, value in settings.items() for item in (f"TRAINER.{node}.{key}", value)]

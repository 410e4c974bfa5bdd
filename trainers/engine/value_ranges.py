"""Values out of range, refused with the key before any data or model is built: a zero or negative learning
rate trains nothing (or climbs the loss) and would still be recorded as a finished run; a batch size of 0 or a
negative worker count fails deep inside torch, naming no key. (DPC's own keys: ``trainers/dpc/config.py``.)"""
import math

from trainers.run.config_keys import ConfigError


def check_value_ranges(cfg):
    lr = cfg.OPTIM.LR
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ConfigError(f"OPTIM.LR must be a positive number, got {lr!r}")
    for key in ("TRAIN_X", "TEST"):
        size = getattr(cfg.DATALOADER, key).BATCH_SIZE
        if size < 1:
            raise ConfigError(f"DATALOADER.{key}.BATCH_SIZE must be at least 1, got {size}")
    if cfg.DATALOADER.NUM_WORKERS < 0:
        raise ConfigError(f"DATALOADER.NUM_WORKERS must be 0 (load in the main process) or more, got "
                          f"{cfg.DATALOADER.NUM_WORKERS}")

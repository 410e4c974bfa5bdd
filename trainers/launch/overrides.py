"""Command-line options that change what a config file's name promises: its epochs or its batch size.

The anchors' scripts name a run's folder after its config file (``.../vit_b16_ep20_batch4/seed1``), and so does
the pipeline; a run given ``OPTIM.MAX_EPOCH 2`` keeps that folder (command lines and scripts stay as they are),
but its ``log.txt`` says so in one line and its ``results.json`` records ``"overrides": {key: {"config": <the
files' value>, "run": <the value used>}}``, which the pipeline's summary and anyone reading the record can see.
"""
from trainers.engine.config import extend_cfg, merge_config_file
from trainers.run.config_keys import get_key

SCHEDULE_KEYS = ("OPTIM.MAX_EPOCH", "DATALOADER.TRAIN_X.BATCH_SIZE")


def config_overrides(config_files, cfg):
    """``{key: {"config": value in the files, "run": value in cfg}}`` for the ``SCHEDULE_KEYS`` that differ."""
    from trainers.engine import get_cfg_default

    from_files = extend_cfg(get_cfg_default())
    for path in config_files:
        if path:
            merge_config_file(from_files, path)
    return {key: {"config": get_key(from_files, key), "run": get_key(cfg, key)} for key in SCHEDULE_KEYS
            if get_key(from_files, key) != get_key(cfg, key)}


def overrides_line(overrides, config_file):
    """The log line for ``config_overrides``' result ("" when nothing is overridden)."""
    if not overrides:
        return ""
    changes = ", ".join(f"{key} {change['run']} (the config says {change['config']})"
                        for key, change in overrides.items())
    return (f"Note: the command line changes the schedule of {config_file or 'the config'}: {changes}; "
            'results.json records this under "overrides"')

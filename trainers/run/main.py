"""What ``python train.py`` does once its arguments are parsed: build the config, hold the run directory's lock,
set up seeding and the log, then train or evaluate through the registered trainer.

``train.py`` imports this module only when a run starts, so that ``train.py --help`` answers at once.
"""
import os
import sys

import torch

import datasets  # noqa: F401  (registers the dataset readers)
from datasets.pickle_safety import trust_pickled_files
from datasets.toolbox import DATASET_REGISTRY, runtime_location
from trainers.engine import RUNTIME_NAME, TRAINER_REGISTRY, build_trainer, set_random_seed
from trainers.engine.config import build_cfg
from trainers.run import distributed
from trainers.run.console_log import setup_logger
from trainers.run.determinism import determinism
from trainers.run.finished import as_evaluation, finished_run_to_evaluate
from trainers.run.lock import run_lock
from trainers.run.overrides import config_overrides, overrides_line
from trainers.run.paths import REPO_DIR
from trainers.run.record import refuse_evaluation_into_training_run
from trainers.run.stop_signals import stop_on_signals


def print_args(args, cfg):
    print("***************")
    print("** Arguments **")
    print("***************")
    for key in sorted(args.__dict__):
        print(f"{key}: {args.__dict__[key]}")
    print("************")
    print("** Config **")
    print("************")
    print(cfg)


# Flags of the anchors' train.py and the config keys they set (after the yaml files, before KEY VALUE opts).
FLAG_KEYS = {
    "root": "DATASET.ROOT", "output_dir": "OUTPUT_DIR", "resume": "RESUME", "seed": "SEED",
    "source_domains": "DATASET.SOURCE_DOMAINS", "target_domains": "DATASET.TARGET_DOMAINS",
    "transforms": "INPUT.TRANSFORMS", "trainer": "TRAINER.NAME", "backbone": "MODEL.BACKBONE.NAME",
    "head": "MODEL.HEAD.NAME",
}


def setup_cfg(args, notes=None):
    """Defaults, then the dataset yaml, the method yaml, the flags, and finally the trailing KEY VALUE pairs.

    Unlike the anchors, ``--seed 0`` seeds (only an omitted flag leaves the config's value). Lines for the run's
    log (``build_cfg``'s) are appended to ``notes`` if given."""
    flags = {key: getattr(args, name) for name, key in FLAG_KEYS.items()
             if getattr(args, name) not in (None, "", [])}
    return build_cfg([args.dataset_config_file, args.config_file], args.opts or [], flags, notes=notes)


def main(args):
    with stop_on_signals():  # SIGTERM, SIGINT, SIGUSR2: stop within seconds, the last checkpoint kept whole
        return _main(args)


def _main(args):
    notes = []
    cfg = setup_cfg(args, notes)
    finished = None if args.eval_only else finished_run_to_evaluate(cfg)
    if finished is not None:  # the reference README's step 3: evaluate the finished run, keep its record
        args, cfg, note = as_evaluation(args, cfg, finished)
        notes.append(note)
    distributed.init_from_env()  # under torchrun
    if not distributed.is_main_process():
        sys.stdout = open(os.devnull, "w")  # rank 0 prints for all; errors still reach stderr
        trainer = run(args, cfg, notes)
    else:
        if args.eval_only:
            refuse_evaluation_into_training_run(cfg.OUTPUT_DIR)
        with run_lock(cfg.OUTPUT_DIR):  # one writer per run directory
            trainer = run(args, cfg, notes)
    distributed.finish()
    return trainer


def run(args, cfg, notes=()):
    trust_pickled_files(cfg.TRUST_PICKLED_FILES)
    if getattr(args, "threads", 0):
        torch.set_num_threads(args.threads)
    if cfg.SEED >= 0:
        print(f"Setting fixed seed: {cfg.SEED}")
        set_random_seed(cfg.SEED)
    if distributed.is_main_process():
        setup_logger(cfg.OUTPUT_DIR)
    for note in notes:
        print(note)
    with determinism(cfg.DETERMINISTIC, torch.cuda.is_available() and cfg.USE_CUDA):
        return _run(args, cfg)


def _run(args, cfg):
    print_args(args, cfg)
    print(f"Toolbox runtime: {RUNTIME_NAME} ({runtime_location()})")
    trainer = build_trainer(cfg)
    if not args.eval_only:
        trainer.config_overrides = config_overrides([args.dataset_config_file, args.config_file], cfg)
    if trainer.config_overrides:
        print(overrides_line(trainer.config_overrides, args.config_file))
    if args.eval_only:
        trainer.load_model(args.model_dir, epoch=args.load_epoch)
        trainer.test()
        return trainer
    if not args.no_train:
        trainer.train()
    return trainer


def registered_lines():
    """``train.py --list``: the trainers, the dataset readers and the shipped config files."""
    lines = ["Trainers: " + ", ".join(sorted(TRAINER_REGISTRY.registered_names())),
             "Datasets: " + ", ".join(sorted(DATASET_REGISTRY.registered_names()))]
    for folder, _, files in sorted(os.walk(os.path.join(REPO_DIR, "configs"))):
        yamls = sorted(f for f in files if f.endswith(".yaml"))
        if yamls:
            lines.append(f"{os.path.relpath(folder, REPO_DIR)}/: " + ", ".join(yamls))
    return lines

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
from trainers.engine.upstream import InputRun, check_finished, check_not_another_finished_run, check_output_dir
from trainers.launch.finished import as_evaluation, evaluation_dir, finished_run_to_evaluate
from trainers.launch.overrides import config_overrides, overrides_line
from trainers.run import distributed
from trainers.run.console_log import setup_logger
from trainers.run.determinism import determinism
from trainers.run.input_checks import check_paths_exist
from trainers.run.lock import run_lock
from trainers.run.paths import REPO_DIR
from trainers.run.record import read_results, refuse_evaluation_into_training_run
from trainers.run.stop_signals import stop_on_signals
from trainers.run.threads import choose_threads, threads_line


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
    trust_pickled_files(cfg.TRUST_PICKLED_FILES)  # before the first checkpoint of another run is read
    finished = None if args.eval_only else finished_run_to_evaluate(cfg)
    if finished is not None:  # the reference README's step 3: evaluate the finished run, keep its record
        args, cfg, note = as_evaluation(args, cfg, finished)
        notes.append(note)
    check_paths_exist(args, cfg)  # before anything is printed or built
    distributed.init_from_env()  # under torchrun
    if not distributed.is_main_process():
        sys.stdout = open(os.devnull, "w")  # rank 0 prints for all; errors still reach stderr
        trainer = run(args, cfg, notes)
    else:
        if args.eval_only:
            refuse_evaluation_into_training_run(cfg.OUTPUT_DIR)
        input_states = check_input_runs(args, cfg)  # before the run's folder is locked or written
        with run_lock(cfg.OUTPUT_DIR):  # one writer per run directory
            trainer = run(args, cfg, notes, input_states)
    distributed.finish()
    return trainer


def check_input_runs(args, cfg):
    """One run per folder, and finished inputs (``trainers/engine/upstream.py``); returns the input runs' states for
    the record (``{"stage1": "finished"}``...)."""
    if cfg.TRAINER.NAME not in TRAINER_REGISTRY.registered_names():
        return {}  # build_trainer names the unknown trainer
    input_runs = getattr(TRAINER_REGISTRY.get(cfg.TRAINER.NAME), "input_runs", None)  # None: a toolbox's own
    sources = list(input_runs(cfg, training=not args.eval_only)) if input_runs else []
    if args.eval_only and args.model_dir:
        sources.append(InputRun("--model-dir", args.model_dir, allowed_by="--allow-unfinished",
                                allowed=getattr(args, "allow_unfinished", False), record_field="evaluated_run"))
    exempt = evaluation_dir(args.model_dir, cfg) if args.eval_only and args.model_dir else ""
    check_output_dir(cfg.OUTPUT_DIR, sources, exempt)
    return {source.record_field: check_finished(source) for source in sources
            if source.must_be_finished and source.record_field}


def run(args, cfg, notes=(), input_states=None):
    notes = [*notes, cpu_threads(getattr(args, "threads", 0), on_gpu=cfg.USE_CUDA and torch.cuda.is_available())]
    if cfg.SEED >= 0:
        print(f"Setting fixed seed: {cfg.SEED}")
        set_random_seed(cfg.SEED)
    if distributed.is_main_process():
        setup_logger(cfg.OUTPUT_DIR)
    for note in notes:
        print(note)
    with determinism(cfg.DETERMINISTIC, torch.cuda.is_available() and cfg.USE_CUDA):
        return _run(args, cfg, input_states or {})


def cpu_threads(requested, on_gpu):
    """Set torch's intra-op threads (trainers/run/threads.py says how they are chosen); the log's line. On a GPU
    only an explicit choice applies: the CPU then mostly waits."""
    threads, why = choose_threads(requested)
    if on_gpu and not requested:
        return threads_line(torch.get_num_threads(), "torch's default on a GPU run")
    torch.set_num_threads(threads)
    return threads_line(threads, why)


def _run(args, cfg, input_states):
    print_args(args, cfg)
    print(f"Toolbox runtime: {RUNTIME_NAME} ({runtime_location()})")
    trainer = build_trainer(cfg)
    trainer.input_states = {field: state for field, state in input_states.items() if state}
    if distributed.is_main_process():  # after the trainer's own config checks, whose words say more
        identity = {**trainer.identity, "eval_only": bool(args.eval_only)}
        check_not_another_finished_run(cfg.OUTPUT_DIR, read_results(cfg.OUTPUT_DIR), identity, args.model_dir)
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

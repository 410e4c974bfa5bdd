"""A training command whose output folder holds a finished training run of it that asks only for other classes or
another test split evaluates that run, into a folder of its own inside the run's folder.

This is the reference README's third DPC step: the stage-2 command again, with ``DATASET.SUBSAMPLE_CLASSES new``
(and ``TEST.SPLIT test``) and without ``--eval-only``. Training again would replace the finished run (and its
``results.json``); instead the run's final checkpoint is evaluated into ``<output-dir>/eval_<classes>_<split>/``,
which gets its own ``log.txt`` and ``results.json``. A command that differs from the finished run in anything
else is not such an evaluation: it is refused as a command for another run, as before.
"""
import os

from trainers.engine import TRAINER_REGISTRY
from trainers.engine.identity import identity_differences, run_identity
from trainers.run.record import read_results

EVALUATION_KEYS = ("DATASET.SUBSAMPLE_CLASSES", "TEST.SPLIT")


def evaluation_dir(output_dir, cfg):
    return os.path.join(output_dir, f"eval_{cfg.DATASET.SUBSAMPLE_CLASSES}_{cfg.TEST.SPLIT}")


def finished_run_to_evaluate(cfg):
    """The record of the finished training run in ``cfg.OUTPUT_DIR`` that this training command would evaluate
    (see above), or None: no finished training run there, the same classes and split, or another run."""
    record = read_results(cfg.OUTPUT_DIR) if cfg.OUTPUT_DIR else None
    if record is None or record["identity"].get("eval_only", True):
        return None
    if (cfg.DATASET.SUBSAMPLE_CLASSES, cfg.TEST.SPLIT) == (record["subsample_classes"], record["split"]):
        return None
    if cfg.TRAINER.NAME not in TRAINER_REGISTRY.registered_names():
        return None
    as_trained = cfg.clone()
    as_trained.defrost()
    as_trained.DATASET.SUBSAMPLE_CLASSES, as_trained.TEST.SPLIT = record["subsample_classes"], record["split"]
    as_trained.freeze()
    return None if identity_differences(record["identity"], run_identity(as_trained)) else record


def as_evaluation(args, cfg, record):
    """(args, cfg, note): ``--eval-only --model-dir <the run>`` into ``evaluation_dir``; the note says so."""
    run_dir = cfg.OUTPUT_DIR
    target = evaluation_dir(run_dir, cfg)
    cfg = cfg.clone()
    cfg.defrost()
    cfg.OUTPUT_DIR = target
    cfg.freeze()
    args = type(args)(**{**vars(args), "eval_only": True, "model_dir": run_dir, "load_epoch": None,
                         "output_dir": target})
    note = (f"Note: {run_dir} holds a finished {record['trainer']} run ({record['subsample_classes']} classes, "
            f"{record['split']} split); this command asks for {cfg.DATASET.SUBSAMPLE_CLASSES} classes on the "
            f"{cfg.TEST.SPLIT} split: evaluating that run into {target} (its results.json is kept)")
    return args, cfg, note

"""Train or evaluate a CLIP prompt learner; the command line of the CoOp family's ``train.py``.

    python train.py --root DATA --seed 1 --trainer CoOp \
        --dataset-config-file configs/datasets/caltech101.yaml \
        --config-file configs/trainers/CoOp/vit_b16_ctxv1.yaml \
        --output-dir output/... DATASET.NUM_SHOTS 16 DATASET.SUBSAMPLE_CLASSES base
"""
import argparse
import sys

import torch

import datasets  # noqa: F401  (registers the dataset readers)
import trainers  # noqa: F401  (registers the trainers)
from datasets.toolbox import runtime_location
from trainers import distributed
from trainers.cli_errors import run_reporting_bad_input
from trainers.config import build_cfg
from trainers.console_log import setup_logger
from trainers.engine import RUNTIME_NAME, build_trainer, set_random_seed
from trainers.run_lock import run_lock
from trainers.run_record import refuse_evaluation_into_training_run


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


def setup_cfg(args):
    """Defaults, then the dataset yaml, the method yaml, the flags, and finally the trailing KEY VALUE pairs.

    Unlike the anchors, ``--seed 0`` seeds (only an omitted flag leaves the config's value)."""
    flags = {key: getattr(args, name) for name, key in FLAG_KEYS.items()
             if getattr(args, name) not in (None, "", [])}
    return build_cfg([args.dataset_config_file, args.config_file], args.opts or [], flags)


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=str, default="", help="path to the datasets (DATASET.ROOT)")
    parser.add_argument("--output-dir", type=str, default="", help="output directory")
    parser.add_argument("--resume", type=str, default="", help="checkpoint directory to resume from")
    parser.add_argument("--seed", type=int, default=None, help="random seed (0 included); omitted: from the config")
    parser.add_argument("--source-domains", type=str, nargs="+", help="source domains for DA/DG")
    parser.add_argument("--target-domains", type=str, nargs="+", help="target domains for DA/DG")
    parser.add_argument("--transforms", type=str, nargs="+", help="data augmentation methods")
    parser.add_argument("--config-file", type=str, default="", help="path to the method's config file")
    parser.add_argument("--dataset-config-file", type=str, default="", help="path to the dataset's config file")
    parser.add_argument("--trainer", type=str, default="", help="name of the trainer")
    parser.add_argument("--backbone", type=str, default="", help="name of the CNN backbone")
    parser.add_argument("--head", type=str, default="", help="name of the head")
    parser.add_argument("--eval-only", action="store_true", help="evaluation only")
    parser.add_argument("--model-dir", type=str, default="", help="load the model from this directory for eval-only")
    parser.add_argument("--load-epoch", type=int, help="load the model weights of this epoch for evaluation")
    parser.add_argument("--no-train", action="store_true", help="do not call trainer.train()")
    parser.add_argument("--debug", action="store_true", help="show the traceback of a bad-input error too")
    parser.add_argument("opts", default=None, nargs=argparse.REMAINDER,
                        help="modify config options from the command line")
    return parser


def main(args):
    cfg = setup_cfg(args)
    distributed.init_from_env()  # under torchrun
    if not distributed.is_main_process():
        return run(args, cfg)
    if args.eval_only:
        refuse_evaluation_into_training_run(cfg.OUTPUT_DIR)
    with run_lock(cfg.OUTPUT_DIR):  # one writer per run directory
        return run(args, cfg)


def run(args, cfg):
    if cfg.SEED >= 0:
        print(f"Setting fixed seed: {cfg.SEED}")
        set_random_seed(cfg.SEED)
    if distributed.is_main_process():
        setup_logger(cfg.OUTPUT_DIR)
    if torch.cuda.is_available() and cfg.USE_CUDA:
        torch.backends.cudnn.benchmark = True
    print_args(args, cfg)
    print(f"Toolbox runtime: {RUNTIME_NAME} ({runtime_location()})")
    trainer = build_trainer(cfg)
    if args.eval_only:
        trainer.load_model(args.model_dir, epoch=args.load_epoch)
        trainer.test()
        return trainer
    if not args.no_train:
        trainer.train()
    return trainer


if __name__ == "__main__":
    arguments = build_parser().parse_args()
    sys.exit(run_reporting_bad_input(lambda: main(arguments), debug=arguments.debug))

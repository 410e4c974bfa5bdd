"""Train or evaluate a CLIP prompt learner; the command line of the CoOp family's ``train.py``.

    python train.py --root DATA --seed 1 --trainer CoOp \
        --dataset-config-file configs/datasets/caltech101.yaml \
        --config-file configs/trainers/CoOp/vit_b16_ctxv1.yaml \
        --output-dir output/... DATASET.NUM_SHOTS 16 DATASET.SUBSAMPLE_CLASSES base

Bad input (a config key, a missing file, a checkpoint of another run) is reported in two lines; --debug or
DPC_DEBUG=1 shows its traceback.
"""
import argparse
import difflib
import glob
import importlib.util
import os
import re
import signal
import sys
import warnings

# The openai-clip package imports pkg_resources, which warns on every start-up.
warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)


def _launch():
    """The project's modules, imported when a run starts: ``train.py --help`` answers before torch loads."""
    import datasets  # noqa: F401  (registers the dataset readers)
    import trainers  # noqa: F401  (registers the trainers)
    from trainers.launch import main as launch

    return launch


def setup_cfg(args):
    return _launch().setup_cfg(args)


def main(args):
    """Run ``train.py`` with parsed arguments; returns the trainer."""
    return _launch().main(args)


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
    parser.add_argument("--allow-unfinished", action="store_true",
                        help="with --eval-only: evaluate a --model-dir run that has not finished (the record says so)")
    parser.add_argument("--load-epoch", type=int, help="load the model weights of this epoch for evaluation")
    parser.add_argument("--no-train", action="store_true", help="do not call trainer.train()")
    parser.add_argument("--debug", action="store_true", help="show the traceback of a bad-input error too")
    parser.add_argument("--list", action="store_true", help="list the trainers, datasets and config files, and exit")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads (default: OMP_NUM_THREADS if set, else torch's choice: all cores)")
    parser.add_argument("opts", default=None, nargs=argparse.REMAINDER,
                        help="modify config options from the command line")
    return parser


# ---- what can be checked before torch loads (seconds): the trainer's name and the config files --------------
# The rest of the input (dataset root, --model-dir, BACKBONE_DIR, CLIP weights) needs the merged config and is
# checked right after it is built, before anything is printed or built (trainers/run/input_checks.py).

_REGISTERED_CLASS = re.compile(r"@TRAINER_REGISTRY\.register\(\)\s*\nclass (\w+)")


def _trainer_names():
    """The registered trainers' names, read from the source (importing the trainers would load torch): every
    class decorated ``@TRAINER_REGISTRY.register()`` here and, where Dassl is installed, in Dassl's engine."""
    folders = [os.path.join(os.path.dirname(os.path.abspath(__file__)), "trainers")]
    dassl = importlib.util.find_spec("dassl")
    if dassl is not None and dassl.submodule_search_locations:
        folders += [os.path.join(location, "engine") for location in dassl.submodule_search_locations]
    names = set()
    for folder in folders:
        for path in glob.glob(os.path.join(folder, "**", "*.py"), recursive=True):
            with open(path, encoding="utf-8") as f:
                names.update(_REGISTERED_CLASS.findall(f.read()))
    return names


def early_problem(args):
    """What is wrong with the command line that needs no config to see, in one line; None if nothing is."""
    for flag, path in (("--config-file", args.config_file), ("--dataset-config-file", args.dataset_config_file)):
        if path and not os.path.isfile(path):
            return f"{flag}: config file not found: {path}"
    names = _trainer_names()
    if args.trainer and args.trainer not in names:
        by_lower = {name.lower(): name for name in names}  # "Coop" means CoOp, not CoCoOp
        close = difflib.get_close_matches(args.trainer.lower(), list(by_lower), n=1, cutoff=0.5)
        hint = f' Did you mean "{by_lower[close[0]]}"?' if close else ""
        return f'No trainer named "{args.trainer}".{hint} Registered: {", ".join(sorted(names))}'
    return None


STOP_SIGNAL_NAMES = ("SIGTERM", "SIGINT", "SIGUSR2")


def _stop_while_starting(signum, frame):
    print(f"train.py: stopped by {signal.Signals(signum).name} outside the run (nothing was being written)",
          file=sys.stderr)
    raise SystemExit(128 + signum)


def command_line(argv=None):
    # Until the run's own handlers (trainers/run/stop_signals.py) take over: a stop signal during the imports
    # ends the process with the same status, and one line.
    for name in STOP_SIGNAL_NAMES:
        if signal.getsignal(getattr(signal, name)) is not signal.SIG_IGN:
            signal.signal(getattr(signal, name), _stop_while_starting)
    args = build_parser().parse_args(argv)
    if args.list:
        print("\n".join(_launch().registered_lines()))
        return 0
    problem = early_problem(args)
    if problem:
        print(f"train.py: error: {problem}", file=sys.stderr)
        return 2
    from trainers.run.errors import run_reporting_bad_input

    status = run_reporting_bad_input(lambda: main(args), debug=args.debug)
    for name in STOP_SIGNAL_NAMES:  # the run is over: a late signal ends the exiting process as it always did
        if signal.getsignal(getattr(signal, name)) is _stop_while_starting:
            signal.signal(getattr(signal, name), signal.SIG_DFL)
    return status


if __name__ == "__main__":
    sys.exit(command_line())

"""``train.py`` runs inside the test process: one builder of its command line, and runs stopped between epochs."""
import pytest

import train
from support.hosts import cpu_yaml

SHAPES_YAML = "configs/datasets/shapes.yaml"
COOP_CPU_YAML = "configs/trainers/CoOp/cpu_tiny.yaml"
DPC_CPU_YAML = "configs/trainers/DPC/cpu_tiny.yaml"


def train_argv(trainer, root, clip_path, out, *opts, seed=1, epochs=2, subsample="base", shots=4, flags=(),
               config_file=None, print_freq=100):
    """``python train.py`` arguments: ``trainer`` on the shapes dataset under ``root`` with the tiny CLIP.

    The config is the trainer's CPU config unless ``config_file`` names another; ``flags`` (``--eval-only``, ...)
    come before the KEY VALUE options, which argparse reads to the end; ``opts`` come last, so they win.
    ``clip_path=None``, ``epochs=None`` or ``print_freq=None`` leave that key to the config (and to stage 1).
    """
    given = (("MODEL.BACKBONE.NAME", clip_path), ("DATASET.NUM_SHOTS", shots),
             ("DATASET.SUBSAMPLE_CLASSES", subsample), ("OPTIM.MAX_EPOCH", epochs), ("TRAIN.PRINT_FREQ", print_freq))
    return [
        "--root", root, "--seed", seed, "--trainer", trainer, *flags,
        "--dataset-config-file", SHAPES_YAML, "--config-file", config_file or cpu_yaml(trainer), "--output-dir", out,
        *(item for key, value in given if value is not None for item in (key, value)), *opts,
    ]


def run_train(*argv):
    """Run ``python train.py ARGV`` in this process and return the trainer."""
    return train.main(train.build_parser().parse_args([str(a) for a in argv]))


class Interrupted(Exception):
    """What ``run_train_interrupted`` raises to stop a run between two epochs."""


def run_train_interrupted(after_epoch, *argv):
    """``run_train(*argv)`` stopped by an exception right after epoch ``after_epoch`` (1-based) is saved, as a
    crash between epochs would stop it."""
    from trainers.engine.clip_trainer import ClipTrainer

    original_after_epoch = ClipTrainer.after_epoch

    def after_epoch_then_crash(self):
        original_after_epoch(self)
        if self.epoch + 1 == after_epoch:
            raise Interrupted()

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ClipTrainer, "after_epoch", after_epoch_then_crash)
        with pytest.raises(Interrupted):
            run_train(*argv)

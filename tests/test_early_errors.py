"""Bad input is reported before the config dump: the trainer's name and the config files before torch loads
(seconds), the paths of the run (data root, --model-dir, BACKBONE_DIR, CLIP weights) before anything is built;
a misspelled key gets the closest key, as a misspelled trainer gets the closest trainer."""
import subprocess
import sys
import time

import pytest
from support.paths import REPO_DIR

import train
from trainers.engine import TRAINER_REGISTRY
from trainers.engine.config import build_cfg
from trainers.run.config_keys import ConfigError

DEMO = ["--dataset-config-file", "configs/demo/demo_world.yaml", "--config-file", "configs/demo/coop.yaml"]
CONFIG_DUMP = "** Config **"


def train_py(*argv):
    """``python train.py ARGV`` as a user runs it: (exit status, stdout, stderr, seconds)."""
    start = time.time()
    done = subprocess.run([sys.executable, "train.py", *argv], cwd=REPO_DIR, capture_output=True, text=True,
                          timeout=60)
    return done.returncode, done.stdout, done.stderr, time.time() - start


@pytest.mark.parametrize("argv, expected", [
    (["--trainer", "CoOpp", *DEMO], 'No trainer named "CoOpp". Did you mean "CoOp"?'),
    (["--trainer", "CoOp", "--dataset-config-file", "configs/demo/demo_world.yaml", "--config-file",
      "configs/demo/cop.yaml"], "--config-file: config file not found: configs/demo/cop.yaml"),
])
def test_a_misspelled_trainer_or_config_file_fails_at_once(tmp_path, argv, expected):
    status, out, err, seconds = train_py("--root", str(tmp_path), "--output-dir", str(tmp_path / "out"), *argv)
    assert status == 2 and f"train.py: error: {expected}" in err
    assert CONFIG_DUMP not in out and not (tmp_path / "out").exists()
    assert seconds < 5, f"{seconds:.1f} s"  # no torch import (several seconds on a busy machine) before the error


def test_the_names_read_from_the_source_are_the_registered_trainers():
    assert train._trainer_names() >= set(TRAINER_REGISTRY.registered_names())


@pytest.mark.parametrize("opts, closest", [(["TRAINER.COOP.N_CTXX", "4"], "TRAINER.COOP.N_CTX"),
                                           (["OPTIM.MAX_EPOCHS", "3"], "OPTIM.MAX_EPOCH"),
                                           (["trainer.dpc.backbone_dir", "x"], "TRAINER.DPC.BACKBONE_DIR")])
def test_a_misspelled_key_suggests_the_closest_key(opts, closest):
    with pytest.raises(ConfigError, match=f'Non-existent key: {opts[0]} .*Did you mean "{closest}"\\?'):
        build_cfg(["configs/demo/coop.yaml"], opts, {"TRAINER.NAME": "CoOp"})


def test_a_misspelled_key_in_a_yaml_file_too(tmp_path):
    yaml = tmp_path / "mine.yaml"
    yaml.write_text("OPTIM:\n  MAX_EPOCHS: 3\n")
    with pytest.raises(ConfigError, match=f'{yaml}: Non-existent config key: OPTIM.MAX_EPOCHS .*Did you mean '
                                          '"OPTIM.MAX_EPOCH"'):
        build_cfg([str(yaml)])


def test_missing_paths_of_the_run_are_named_before_the_dump(tmp_path, capsys):
    missing = tmp_path / "nowhere"
    status = train.command_line(["--root", str(missing), "--trainer", "DPC", "--dataset-config-file",
                                 "configs/demo/demo_world.yaml", "--config-file", "configs/demo/dpc.yaml",
                                 "--output-dir", str(tmp_path / "out"), "--eval-only", "--model-dir",
                                 str(missing / "run"), "MODEL.BACKBONE.NAME", str(missing / "clip.pt"),
                                 "TRAINER.DPC.BACKBONE_DIR", str(missing / "stage1")])
    out, err = capsys.readouterr()
    assert status == 2 and CONFIG_DUMP not in out and not (tmp_path / "out").exists()
    for named in (f"--root / DATASET.ROOT: no such folder: {missing}", f"--model-dir: no such folder: {missing}/run",
                  f"TRAINER.DPC.BACKBONE_DIR: no such run folder or checkpoint: {missing}/stage1",
                  f"MODEL.BACKBONE.NAME: '{missing}/clip.pt' is neither a file nor a CLIP model name"):
        assert named in err


def test_a_clip_model_name_not_yet_downloaded_is_not_refused_early(tmp_path):
    from trainers.run.input_checks import input_problems

    args = train.build_parser().parse_args(["--root", str(tmp_path)])
    cfg = build_cfg(["configs/demo/coop.yaml"], ["MODEL.BACKBONE.NAME", "ViT-B/16"], {"DATASET.ROOT": str(tmp_path)})
    assert input_problems(args, cfg) == []

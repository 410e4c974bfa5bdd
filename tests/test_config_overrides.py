"""A run whose command line changes its config's epochs or batch size keeps the folder its command names (the
anchors' scripts derive it from the config's name), and says so: one line in log.txt, ``"overrides"`` in
results.json, and a note when the tables read it."""
import json
import shutil

from support.runs import COOP_CPU_YAML, run_train, train_argv

from tools import output_folders as layout
from tools.tables.results import collect
from trainers.engine.config import build_cfg
from trainers.launch.overrides import config_overrides


def read(folder, name):
    return (folder / name).read_text()

def test_an_epoch_and_batch_override_is_logged_and_recorded(tmp_path, shapes_root, tiny_clip_path):
    out = tmp_path / "coop"
    run_train(*train_argv("CoOp", shapes_root, tiny_clip_path, out, "DATALOADER.TRAIN_X.BATCH_SIZE", 4, epochs=2))
    record = json.loads(read(out, "results.json"))
    assert record["overrides"] == {"OPTIM.MAX_EPOCH": {"config": 4, "run": 2},
                                   "DATALOADER.TRAIN_X.BATCH_SIZE": {"config": 8, "run": 4}}
    assert (f"Note: the command line changes the schedule of {COOP_CPU_YAML}: OPTIM.MAX_EPOCH 2 (the config says "
            "4), DATALOADER.TRAIN_X.BATCH_SIZE 4 (the config says 8)") in read(out, "log.txt")

def test_a_run_as_its_config_says_records_no_override(tmp_path, shapes_root, tiny_clip_path):
    out = tmp_path / "coop"
    run_train(*train_argv("CoOp", shapes_root, tiny_clip_path, out, epochs=4))  # cpu_tiny's own 4 epochs
    assert "overrides" not in json.loads(read(out, "results.json"))
    assert "changes the schedule" not in read(out, "log.txt")

def test_an_evaluation_records_no_override(tmp_path, shapes_root, tiny_clip_path):
    run_train(*train_argv("CoOp", shapes_root, tiny_clip_path, tmp_path / "coop"))
    out = tmp_path / "eval"
    run_train("--eval-only", "--model-dir", tmp_path / "coop", "--load-epoch", 2,
              *train_argv("CoOp", shapes_root, tiny_clip_path, out, subsample="new"))
    assert "overrides" not in json.loads(read(out, "results.json"))

def test_the_alias_files_values_count_as_the_config(tmp_path):
    files = ["", "configs/trainers/SPLE/CoOp/vit_b16_ep10_bs2top2.yaml"]
    cfg = build_cfg(files, ["OPTIM.MAX_EPOCH", "3"], trainer="StackSPLE_CoOp")
    assert config_overrides(files, cfg) == {"OPTIM.MAX_EPOCH": {"config": 10, "run": 3}}

def test_the_tables_note_an_overridden_run(tmp_path, shapes_root, tiny_clip_path, capsys):
    run_train(*train_argv("CoOp", shapes_root, tiny_clip_path, tmp_path / "coop"))
    folder = layout.run_dir(str(tmp_path / "out"), layout.BASE2NEW, "train", "shapes", 4, "CoOp", "cpu_tiny", 1)
    shutil.copytree(tmp_path / "coop", folder)
    capsys.readouterr()
    assert len(collect(str(tmp_path / "out"), layout.BASE2NEW, phases=("train",))) == 1
    assert "ran with OPTIM.MAX_EPOCH 2 (its config says 4)" in capsys.readouterr().err

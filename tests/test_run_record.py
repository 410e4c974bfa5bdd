"""``results.json``: its fields, its atomic write, and its meaning (present = the run finished)."""
import json
import os
import re

import pytest
from support.records import finished_record
from support.runs import run_train, train_argv
from yacs.config import CfgNode

import trainers
from trainers.engine import get_cfg_default
from trainers.engine.clip_trainer import ClipTrainer
from trainers.run.record import REPO_DIR, read_results, write_results


def test_results_json_fields(tmp_path, shapes_root, tiny_clip_path, capsys):
    out = tmp_path / "run"
    run_train(*train_argv("CoOp", shapes_root, tiny_clip_path, out, "TRAINER.COOP.N_CTX", 3, epochs=2, seed=2))
    log = capsys.readouterr().out
    record = json.loads((out / "results.json").read_text())

    assert {"split", "accuracy", "macro_f1", "n", "config", "seed", "commit", "wall_time_s"} <= set(record)
    assert record["split"] == "test" and record["n"] == 9 and record["seed"] == 2
    assert record["trainer"] == "CoOp" and record["dataset"] == "ImageFolder"
    assert record["subsample_classes"] == "base" and record["num_shots"] == 4
    # the numbers are the evaluator's, as printed in the log
    # (two decimals from the built-in evaluator, one from Dassl's)
    printed_acc = re.findall(r"\* accuracy: ([\d.]+)%", log)[-1]
    printed_f1 = re.findall(r"\* macro_f1: ([\d.]+)%", log)[-1]
    decimals = len(printed_acc.split(".")[1])
    assert round(record["accuracy"], decimals) == float(printed_acc)
    assert round(record["macro_f1"], decimals) == float(printed_f1)
    assert record["error_rate"] == pytest.approx(100 - record["accuracy"])
    assert isinstance(record["wall_time_s"], float) and 0 < record["wall_time_s"] < 600
    if os.path.isdir(os.path.join(REPO_DIR, ".git")):
        assert re.fullmatch(r"[0-9a-f]{40}", record["commit"])
    else:
        assert record["commit"] is None or re.fullmatch(r"[0-9a-f]{40}", record["commit"])

    # the resolved config: command-line values included, and it merges back onto the defaults
    config = record["config"]
    assert config["OPTIM"]["MAX_EPOCH"] == 2 and config["SEED"] == 2
    assert config["TRAINER"]["COOP"]["N_CTX"] == 3 and config["TRAINER"]["COOP"]["CTX_INIT"] == "a photo of a"
    assert config["MODEL"]["BACKBONE"]["NAME"] == tiny_clip_path and config["OUTPUT_DIR"] == str(out)
    rebuilt = trainers.extend_cfg(get_cfg_default())
    rebuilt.merge_from_other_cfg(CfgNode(config))
    assert rebuilt.DATASET.SUBSAMPLE_CLASSES == "base" and tuple(rebuilt.INPUT.SIZE) == (32, 32)
    assert read_results(str(out)) == record


def test_write_is_atomic(tmp_path):
    out = str(tmp_path)
    record = finished_record(50.0)
    write_results(out, record)
    with pytest.raises(TypeError):
        write_results(out, {**record, "accuracy": 75.0, "oops": object()})  # fails half-way through json.dumps
    assert json.loads((tmp_path / "results.json").read_text()) == record
    assert read_results(out) == record

    os.remove(tmp_path / "results.json")
    with pytest.raises(TypeError):
        write_results(out, {**record, "oops": object()})
    assert os.listdir(out) == [] and read_results(out) is None


def test_read_results_rejects_unfinished_records(tmp_path):
    (tmp_path / "results.json").write_text('{"accuracy": 7')  # truncated
    assert read_results(str(tmp_path)) is None
    (tmp_path / "results.json").write_text('{"n": 7}')  # no accuracy
    assert read_results(str(tmp_path)) is None


def test_retraining_removes_the_old_record_until_it_finishes(tmp_path, shapes_root, tiny_clip_path, monkeypatch):
    out = tmp_path / "run"
    write_results(str(out), {"accuracy": 99.0})  # e.g. left by an earlier run in the same directory

    def crash(self):
        raise RuntimeError("killed")

    monkeypatch.setattr(ClipTrainer, "after_epoch", crash)
    with pytest.raises(RuntimeError, match="killed"):
        run_train(*train_argv("CoOp", shapes_root, tiny_clip_path, out, epochs=2))
    assert not (out / "results.json").exists()

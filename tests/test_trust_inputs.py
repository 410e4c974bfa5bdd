"""What a run reads must be what it says: as a user meets it.

- a stopped stage 1 is refused by DPC (and, as ``--model-dir``, by ``--eval-only``) unless asked for, and then the
  record and the tables say so;
- a run never writes into the folder of a run it reads, nor into another run's finished folder;
- a benchmark's split file is never redrawn or rewritten, whatever the advice of an error made the user do.
"""
import json
import os
import shutil

import pytest
import torch
from support.dataset_fixtures import write_json_fixture
from support.runs import COOP_CPU_YAML, run_train, run_train_interrupted, train_argv

from tools import output_folders as layout
from tools.tables import cli as tables
from trainers.run.config_keys import ConfigError

DPC_CPU_YAML = "configs/trainers/DPC/cpu_tiny.yaml"
EPOCHS = 3  # of the stage 1, stopped after the first


@pytest.fixture(scope="module")
def stopped(tmp_path_factory, tiny_clip_path):
    """A CoOp stage 1 stopped after epoch 1 of 3 (its last checkpoint kept, no results.json) on a shapes dataset."""
    from datasets.shapes import make_shapes_dataset

    tmp = tmp_path_factory.mktemp("trust")
    root = str(tmp / "data")
    make_shapes_dataset(root, colours=("red", "green"), shapes=("circle", "square"))
    stage1 = tmp / "coop"
    run_train_interrupted(1, *train_argv("CoOp", root, tiny_clip_path, stage1, epochs=EPOCHS))
    assert not (stage1 / "results.json").exists()
    return {"root": root, "clip": tiny_clip_path, "tmp": tmp, "stage1": stage1}


@pytest.fixture(scope="module")
def finished_stage1(stopped):
    """The refusal's advice followed: the same command resumes the stopped stage 1 (a copy) and finishes it."""
    stage1 = stopped["tmp"] / "coop_resumed"
    shutil.copytree(stopped["stage1"], stage1)
    run_train(*train_argv("CoOp", stopped["root"], stopped["clip"], stage1, epochs=EPOCHS))
    return stage1


def dpc_args(stopped, out, *opts):
    return ["--root", stopped["root"], "--seed", 1, "--trainer", "DPC", "--dataset-config-file",
            "configs/datasets/shapes.yaml", "--config-file", DPC_CPU_YAML, "--output-dir", out,
            "MODEL.BACKBONE.NAME", stopped["clip"], "DATASET.NUM_SHOTS", 4, "DATASET.SUBSAMPLE_CLASSES", "base",
            "OPTIM.MAX_EPOCH", 1, "TRAIN.PRINT_FREQ", 100, *opts]


def record(folder):
    with open(os.path.join(folder, "results.json")) as f:
        return json.load(f)


# ---- 1. an unfinished stage 1 or --model-dir ------------------------------------------------------------------


def test_dpc_refuses_a_stopped_stage1_in_one_line_and_writes_nothing(stopped):
    out = stopped["tmp"] / "dpc_refused"
    with pytest.raises(ConfigError) as err:
        run_train(*dpc_args(stopped, out, "TRAINER.DPC.BACKBONE_DIR", stopped["stage1"]))
    message = str(err.value)
    assert str(stopped["stage1"]) in message and f"unfinished (epoch 1 of {EPOCHS})" in message
    assert "resumes it" in message and "TRAINER.DPC.ALLOW_UNFINISHED_STAGE1 True" in message
    assert "\n" not in message
    assert not out.exists()  # refused before the run's folder was made


def test_dpc_over_a_stopped_stage1_on_purpose_is_marked_in_the_record_and_the_table(stopped):
    out_root = stopped["tmp"] / "output"
    out = layout.run_dir(str(out_root), layout.BASE2NEW, "train", "shapes", 4, layout.method_dir_name("CoOp", True),
                         "cpu_tiny", 1)
    run_train(*dpc_args(stopped, out, "TRAINER.DPC.BACKBONE_DIR", stopped["stage1"],
                        "TRAINER.DPC.ALLOW_UNFINISHED_STAGE1", True))
    assert record(out)["stage1"] == f"unfinished (epoch 1 of {EPOCHS})"
    report = stopped["tmp"] / "table.md"
    assert tables.main([str(out_root), "--paper", "none", "--quiet", "--markdown", str(report)]) == 0
    text = report.read_text()
    assert "**Marked runs**" in text and f"stage1: unfinished (epoch 1 of {EPOCHS})" in text
    assert os.path.join(out, "results.json") in text


def test_eval_only_refuses_a_stopped_run_unless_asked_and_then_marks_it(stopped):
    out = stopped["tmp"] / "eval_stopped"
    args = ["--eval-only", "--model-dir", stopped["stage1"],
            *train_argv("CoOp", stopped["root"], stopped["clip"], out, epochs=EPOCHS)]
    with pytest.raises(ConfigError, match=rf"--model-dir .*unfinished \(epoch 1 of {EPOCHS}\).*--allow-unfinished"):
        run_train(*args)
    assert not out.exists()
    run_train("--allow-unfinished", *args)
    assert record(out)["evaluated_run"] == f"unfinished (epoch 1 of {EPOCHS})"


def test_a_resumed_stage1_is_finished_and_dpc_records_it_so(stopped, finished_stage1):
    assert record(finished_stage1)["train_images_per_class"]  # the resumed run finished: a training record
    out = stopped["tmp"] / "dpc_finished"
    run_train(*dpc_args(stopped, out, "TRAINER.DPC.BACKBONE_DIR", finished_stage1))
    assert record(out)["stage1"] == "finished"


def test_a_reference_checkpoint_without_a_run_record_is_accepted_as_foreign(stopped):
    """The reference code's checkpoints record no run: whether that run finished cannot be known; it is used."""
    folder = stopped["tmp"] / "reference_stage1" / "prompt_learner"
    folder.mkdir(parents=True)
    source = os.path.join(stopped["stage1"], "prompt_learner", "model.pth.tar-1")
    checkpoint = torch.load(source, weights_only=False)
    checkpoint.pop("run")
    torch.save(checkpoint, folder / "model.pth.tar-1")
    out = stopped["tmp"] / "dpc_foreign"
    run_train(*dpc_args(stopped, out, "TRAINER.DPC.BACKBONE_DIR", folder / "model.pth.tar-1"))
    assert record(out)["stage1"].startswith("foreign")


# ---- 3. one run per folder ------------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["the same folder", "a folder inside it"])
def test_dpc_into_its_own_stage1_folder_is_refused_before_anything_is_written(stopped, finished_stage1, where):
    stage1 = finished_stage1
    before = sorted(os.listdir(stage1))
    results_before = (stage1 / "results.json").read_bytes()
    out = stage1 if where == "the same folder" else stage1 / "dpc"
    with pytest.raises(ConfigError, match="lies inside, the folder of the run given as TRAINER.DPC.BACKBONE_DIR"):
        run_train(*dpc_args(stopped, out, "TRAINER.DPC.BACKBONE_DIR", stage1))
    assert sorted(os.listdir(stage1)) == before and (stage1 / "results.json").read_bytes() == results_before


def test_an_evaluation_of_another_model_into_a_finished_evaluation_folder_is_refused(stopped, finished_stage1):
    stage1 = finished_stage1
    out = stopped["tmp"] / "eval_finished"
    base = train_argv("CoOp", stopped["root"], stopped["clip"], out, epochs=EPOCHS)
    run_train("--eval-only", "--model-dir", stage1, *base)
    first = (out / "results.json").read_bytes()
    with pytest.raises(ConfigError, match=r"holds a finished run.*--model-dir: "):
        run_train("--eval-only", "--allow-unfinished", "--model-dir", stopped["stage1"], *base)
    assert (out / "results.json").read_bytes() == first


# ---- 2. a benchmark's split is read-only ----------------------------------------------------------------------


def zeroshot_args(root, clip, out, *opts):
    return ["--root", root, "--seed", 1, "--trainer", "ZeroshotCLIP", "--eval-only",
            "--dataset-config-file", "configs/datasets/caltech101.yaml", "--config-file", COOP_CPU_YAML,
            "--output-dir", out, "MODEL.BACKBONE.NAME", clip, *opts]


def test_an_unreadable_image_never_leads_to_a_redrawn_split(tmp_path, tiny_clip_path):
    root = str(tmp_path / "data")
    split, _ = write_json_fixture(root, "Caltech101")
    split_file = os.path.join(root, "caltech-101", "split_zhou_Caltech101.json")
    published = open(split_file, "rb").read()
    broken = split["test"][0][0]
    with open(broken, "wb") as f:
        f.write(b"not a jpeg")
    with pytest.raises(OSError) as err:
        run_train(*zeroshot_args(root, tiny_clip_path, tmp_path / "first"))
    message = str(err.value)
    assert broken in message and "restore it" in message and "DATASET.SKIP_UNREADABLE True" in message
    assert "delete the split" not in message

    # What the old advice said: remove the image and the split file. The split is not drawn anew.
    os.remove(broken)
    os.remove(split_file)
    with pytest.raises(FileNotFoundError, match="split_zhou_Caltech101.json is missing.*CoOp's DATASETS.md"):
        run_train(*zeroshot_args(root, tiny_clip_path, tmp_path / "second"))
    assert not os.path.exists(split_file) and not (tmp_path / "second" / "results.json").exists()

    # The published file put back, the missing image left out on purpose: counted, on the published split.
    with open(split_file, "wb") as f:
        f.write(published)
    out = tmp_path / "skipping"
    run_train(*zeroshot_args(root, tiny_clip_path, out, "DATASET.SKIP_UNREADABLE", True))
    assert record(out)["unreadable_skipped"] == 1 and record(out)["n"] == len(split["test"]) - 1
    assert "split_generated" not in record(out)
    assert open(split_file, "rb").read() == published
    assert sorted(os.listdir(os.path.join(root, "caltech-101"))) == ["101_ObjectCategories", "split_fewshot",
                                                                     "split_zhou_Caltech101.json"]

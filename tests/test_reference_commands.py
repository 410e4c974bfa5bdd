"""The reference code's three DPC steps, as its README writes them, run here unchanged but for the host and the data.

The README's example wraps PromptKD on StanfordCars; here the host is CoOp (the reference code's other DPC
host) on a generated dataset with the demo's tiny CLIP, so step 1 is CoOp's own base-class training and steps 2
and 3 are the README's commands with ``--trainer StackSPLE_CoOp``, its CoOp config path
(``configs/trainers/SPLE/CoOp/vit_b16_ep20.yaml``), its ``--root DATA/<dataset>`` form, its ``SPLE.*`` keys and
an image library in its format. The one addition is ``DATALOADER.NUM_WORKERS 0`` (no worker processes on a
test CPU). Step 3 is the stage-2 command again with ``new`` classes and no ``--eval-only``: it must evaluate the
finished run into a folder of its own and leave step 2's ``results.json`` as it was.
"""
import json
import os
import shlex

import pytest
from support.runs import run_train

from datasets.shapes import make_shapes_dataset

COLOURS, SHAPES = ("red", "green", "blue", "yellow"), ("circle", "square", "triangle")
STAGE1_EPOCHS = 4  # configs/trainers/CoOp/cpu_tiny.yaml

STEP1 = ("python train.py --root {DATA}/shapes --seed 1 --trainer CoOp "
         "--dataset-config-file configs/datasets/shapes.yaml --config-file configs/trainers/CoOp/cpu_tiny.yaml "
         "--output-dir {OUT}/CoOp/base2new/train_base/shapes/1_CoOp_baseline/cpu_tiny/seed1 "
         "DATASET.NUM_SHOTS 16 DATASET.SUBSAMPLE_CLASSES base TEST.SPLIT val")
STAGE2 = ("python train.py --root {DATA}/shapes --seed 1 --trainer StackSPLE_CoOp "
          "--dataset-config-file configs/datasets/shapes.yaml "
          "--config-file configs/trainers/SPLE/CoOp/vit_b16_ep20.yaml "
          "--output-dir {OUT}/CoOp/base2new/train_base/shapes/3_SPLE_converse/vit_b16_ep20_con20/seed1 "
          "DATASET.NUM_SHOTS 16 "
          "SPLE.BACK_CKPT_PATH {OUT}/CoOp/base2new/train_base/shapes/1_CoOp_baseline/cpu_tiny/seed1 "
          "SPLE.BACK_CKPT_EPOCH {EPOCH} SPLE.PIC_LIB {DATA}/SPLE_database/SPLE_Shapes.json SPLE.STACK.MODE converse "
          "SPLE.STACK.WEIGHT 0.2 DATASET.SUBSAMPLE_CLASSES {CLASSES} SPLE.STACK.WEIGHT_FOR_NEW 0.0 TEST.SPLIT {SPLIT} "
          "DATALOADER.NUM_WORKERS 0")
STEP2 = STAGE2.replace("{CLASSES}", "base").replace("{SPLIT}", "val")
STEP3 = STAGE2.replace("{CLASSES}", "new").replace("{SPLIT}", "test")
LIBRARY_IMAGES_PER_CLASS = 2


def write_reference_library(path, dataset_dir):
    """An image library in the reference's format, listing the first images of every class by paths relative to
    the dataset's image folder (as the reference's ``SPLE_<Dataset>.json`` files do)."""
    train, val = {}, {}
    names = sorted(os.listdir(dataset_dir))
    for label, folder in enumerate(names):
        files = sorted(os.listdir(os.path.join(dataset_dir, folder)))
        cname = folder  # the class name as the reader gives it
        train[cname] = [label, [f"{folder}/{f}" for f in files[:LIBRARY_IMAGES_PER_CLASS]]]
        val[cname] = [label, [f"{folder}/{f}" for f in files[-1:]]]
    cnames = list(names)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump({"train": [train], "val": [val], "train_obj_list": cnames, "val_obj_list": cnames}, f)


def run_command(command, **values):
    words = shlex.split(command.format(**values))
    assert words[:2] == ["python", "train.py"]
    return run_train(*words[2:])


def results(folder):
    with open(os.path.join(folder, "results.json")) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def steps(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("reference_commands")
    data, out = str(tmp / "DATA"), str(tmp / "output")
    dataset_dir = make_shapes_dataset(data, colours=COLOURS, shapes=SHAPES)
    write_reference_library(os.path.join(data, "SPLE_database", "SPLE_Shapes.json"), dataset_dir)
    values = {"DATA": data, "OUT": out, "EPOCH": STAGE1_EPOCHS}
    stage1 = run_command(STEP1, **values).output_dir
    run_command(STEP2, **values)
    stage2 = os.path.join(out, "CoOp/base2new/train_base/shapes/3_SPLE_converse/vit_b16_ep20_con20/seed1")
    with open(os.path.join(stage2, "results.json"), "rb") as f:
        step2_bytes = f.read()
    run_command(STEP3, **values)
    return {"tmp": tmp, "data": data, "stage1": stage1, "stage2": stage2, "step2_bytes": step2_bytes}


def test_step2_trains_dpc_over_the_stage1_run_and_tests_base(steps):
    record = results(steps["stage2"])
    assert (record["trainer"], record["subsample_classes"], record["split"]) == ("StackSPLE_CoOp", "base", "val")
    assert record["identity"]["eval_only"] is False
    dpc = record["config"]["TRAINER"]["DPC"]
    assert (dpc["HOST"], dpc["WEIGHT_BASE"], dpc["WEIGHT_NEW"], dpc["TOPK"], dpc["BACKBONE_EPOCH"]) == \
        ("CoOp", 0.2, 0.0, 8, STAGE1_EPOCHS)
    assert record["config"]["OPTIM"]["MAX_EPOCH"] == 20 and record["config"]["DATALOADER"]["TRAIN_X"]["BATCH_SIZE"] == 4


def test_step3_keeps_step2s_record_and_writes_its_own(steps):
    with open(os.path.join(steps["stage2"], "results.json"), "rb") as f:
        assert f.read() == steps["step2_bytes"]
    record = results(os.path.join(steps["stage2"], "eval_new_test"))
    assert (record["trainer"], record["subsample_classes"], record["split"]) == ("StackSPLE_CoOp", "new", "test")
    assert record["identity"]["eval_only"] is True
    assert record["evaluated"]["model_dir"] == os.path.abspath(steps["stage2"])
    assert record["evaluated"]["run_id"] == results(steps["stage2"])["run_id"]


def test_step3s_new_accuracy_is_the_hosts_at_weight_for_new_zero(steps):
    """omega_n = 0: DPC leaves the host's new-class logits exactly as they were, so the accuracy is CoOp's."""
    host_eval = steps["tmp"] / "coop_new"
    run_train("--root", steps["data"], "--seed", 1, "--trainer", "CoOp", "--dataset-config-file",
              "configs/datasets/shapes.yaml", "--config-file", "configs/trainers/CoOp/cpu_tiny.yaml",
              "--output-dir", host_eval, "--eval-only", "--model-dir", steps["stage1"], "--load-epoch",
              STAGE1_EPOCHS, "DATASET.NUM_SHOTS", 16, "DATASET.SUBSAMPLE_CLASSES", "new")
    step3 = results(os.path.join(steps["stage2"], "eval_new_test"))
    assert step3["n"] == results(host_eval)["n"] > 0
    assert step3["accuracy"] == results(host_eval)["accuracy"]


def test_step2s_log_prints_the_config_that_runs(steps):
    """The config dump comes after the SPLE keys are mapped: it shows TRAINER.DPC as the run uses it."""
    with open(os.path.join(steps["stage2"], "log.txt")) as f:
        log = f.read()
    dump = log[log.index("** Config **"):log.index("Toolbox runtime")]
    library = os.path.join(steps["data"], "SPLE_database", "SPLE_Shapes.json")
    dpc_node = dump[dump.index("  DPC:"):]
    assert "HOST: CoOp" in dpc_node and f"NEGATIVE_POOL: {library}" in dpc_node
    assert f"BACKBONE_EPOCH: {STAGE1_EPOCHS}" in dpc_node
    base_classes = len(COLOURS) * len(SHAPES) // 2
    assert f"Negative pool: {base_classes * LIBRARY_IMAGES_PER_CLASS} images ({library})" in log


def test_a_stage1_checkpoint_of_another_prompt_shape_names_the_keys_to_match(steps, tmp_path, capsys):
    """A reference-code stage 1 records no host, so stage 2 builds CoOp from its own config (16 context vectors
    here, 4 there): two lines, the second the --debug hint, the first naming the keys that shape the prompts."""
    import shutil

    import torch

    import train

    out = tmp_path / "out"
    stage1 = out / os.path.relpath(steps["stage1"], steps["tmp"] / "output")  # where STEP2 looks for it
    shutil.copytree(steps["stage1"], stage1)
    checkpoint_path = stage1 / "prompt_learner" / f"model.pth.tar-{STAGE1_EPOCHS}"
    checkpoint = torch.load(checkpoint_path, weights_only=True)
    del checkpoint["host"]  # as the reference code's checkpoints are
    torch.save(checkpoint, checkpoint_path)
    command = STEP2.format(DATA=steps["data"], OUT=str(out), EPOCH=STAGE1_EPOCHS)
    capsys.readouterr()
    assert train.command_line(shlex.split(command)[2:]) == 2  # the backbone too is not recorded there
    assert "needs MODEL.BACKBONE.NAME" in capsys.readouterr().err
    words = shlex.split(command + " MODEL.BACKBONE.NAME configs/demo/demo_clip.pt")  # as the reference's yaml has it
    capsys.readouterr()
    assert train.command_line(words[2:]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2 and "--debug" in lines[1]
    assert "holds prompts of another shape (ctx is [4, " in lines[0] and "[16, " in lines[0]
    assert "TRAINER.COOP.N_CTX (16)" in lines[0] and "TRAINER.COOP.CTX_INIT ('')" in lines[0]


def test_root_may_be_the_datasets_own_folder(steps):
    """``--root DATA/shapes`` (the reference README's form) and ``--root DATA`` read the same dataset."""
    from support.dataset_fixtures import make_cfg

    from datasets.toolbox import build_dataset

    def train_paths(root):
        cfg = make_cfg(root, "ImageFolder", subsample="base")
        cfg.DATASET.FOLDER = "shapes"
        return [item.impath for item in build_dataset(cfg).train_x]

    assert train_paths(os.path.join(steps["data"], "shapes")) == train_paths(steps["data"])
    with pytest.raises(FileNotFoundError, match="the folder that holds the dataset folders, or the dataset's folder"):
        train_paths(os.path.join(steps["data"], "SPLE_database"))


def test_another_option_into_the_finished_run_is_still_refused(steps):
    """Only other classes or another split make step 3 an evaluation; another seed is another run."""
    words = shlex.split(STEP3.replace("--seed 1", "--seed 2").format(
        DATA=steps["data"], OUT=str(steps["tmp"] / "output"), EPOCH=STAGE1_EPOCHS))
    with pytest.raises(ValueError, match="belongs to another run .*seed: 1 there, 2 here"):
        run_train(*words[2:])
    with open(os.path.join(steps["stage2"], "results.json"), "rb") as f:
        assert f.read() == steps["step2_bytes"]


def test_a_stage1_path_without_a_checkpoint_is_named(steps, tmp_path):
    words = shlex.split(STEP2.format(DATA=steps["data"], OUT=str(tmp_path / "nothing"), EPOCH=STAGE1_EPOCHS))
    # named before the config is printed (trainers/run/input_checks.py)
    with pytest.raises(FileNotFoundError, match=r"TRAINER.DPC.BACKBONE_DIR: no such run folder or checkpoint: "
                                                r".*1_CoOp_baseline/cpu_tiny/seed1 \(the host's stage-1"):
        run_train(*words[2:])


def test_evaluating_a_host_run_with_another_prompt_shape_names_the_key_that_differs(steps, tmp_path, capsys):
    """Our checkpoints record the host's settings: the key that differs comes first, with both values."""
    import train

    capsys.readouterr()
    assert train.command_line([
        "--root", steps["data"], "--seed", "1", "--trainer", "CoOp", "--dataset-config-file",
        "configs/datasets/shapes.yaml", "--config-file", "configs/trainers/CoOp/cpu_tiny.yaml", "--output-dir",
        str(tmp_path / "eval"), "--eval-only", "--model-dir", steps["stage1"], "DATASET.NUM_SHOTS", "16",
        "DATASET.SUBSAMPLE_CLASSES", "new", "TRAINER.COOP.CTX_INIT", '""']) == 2
    first = capsys.readouterr().err.splitlines()[0]
    assert "(ctx is [4, 128] there, [16, 128] here): set these keys as that run had them: " \
           "TRAINER.COOP.CTX_INIT ('' here, 'a photo of a' there), TRAINER.COOP.N_CTX (16)" in first

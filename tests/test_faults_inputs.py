"""Bad inputs are refused before anything trains, in one line that names the file and the entry, and leave no
checkpoint and no results.json: split entries that do not fit the dataset, image libraries and few-shot caches
of the same kind, values out of range, a dataset folder without a class its split names, a checkpoint of another
backbone or host (docs/RELIABILITY.md)."""
import json
import os

import pytest
from support.runs import run_train, train_argv

from trainers.dpc.negative_pool import read_image_library
from trainers.run.config_keys import ConfigError


def nothing_trained(out):
    return not os.path.exists(os.path.join(out, "results.json")) and not os.path.exists(
        os.path.join(out, "prompt_learner"))


@pytest.fixture
def split(shapes_root, tiny_clip_path, tmp_path):
    """The shapes dataset's split file as train.py writes it: (path, its content)."""
    run_train("--no-train", *train_argv("CoOp", shapes_root, tiny_clip_path, tmp_path / "probe"))
    path = os.path.join(shapes_root, "shapes", "split_shapes.json")
    with open(path) as f:
        return path, json.load(f)


def rewrite(path, content):
    with open(path, "w") as f:
        json.dump(content, f)


# ---- 2. split entries checked against the dataset --------------------------------------------------------------


def entry_with(content, key, index, **changes):
    rel, label, cname = content[key][index]
    content[key][index] = [changes.get("rel", rel), changes.get("label", label), changes.get("cname", cname)]
    return content


@pytest.mark.parametrize("change, message", [
    (("test", 0, {"label": 99}), r'entry 0 of "test" \(.*\): label 99 is outside the class range 0\.\.\.5 '
                                 r'\(6 classes in "train"\)'),
    (("train", 3, {"label": -1}), r'entry 3 of "train" .*label -1 is outside the class range'),
    (("val", 1, {"label": True}), r'entry 1 of "val" .*label True is outside the class range'),
    (("test", 2, {"cname": "purple_star"}), r'entry 2 of "test" .*label \d is class .* elsewhere in the file '
                                             r'\(one class name per label\)'),
    (("val", 0, {"rel": "../elsewhere/x.png"}), r'entry 0 of "val" .*: the image path \'../elsewhere/x.png\' is not '
                                                 r"inside the image folder .*/shapes$"),
    (("train", 0, {"rel": "/tmp/x.png"}), r'entry 0 of "train" .*: the image path \'/tmp/x.png\' is not inside'),
])
def test_2_a_split_entry_that_does_not_fit_the_dataset_is_named_before_training(split, shapes_root, tiny_clip_path,
                                                                                tmp_path, change, message):
    path, content = split
    key, index, changes = change
    rewrite(path, entry_with(content, key, index, **changes))
    out = tmp_path / "run"
    with pytest.raises(ValueError, match=f"^{path}: {message}"):
        run_train(*train_argv("CoOp", shapes_root, tiny_clip_path, out))
    assert nothing_trained(out)


def test_2_a_class_name_with_two_labels_is_refused():
    from datasets.split_checks import SplitEntryError, check_split_entries

    lists = [("train", [("a/1.png", 0, "a"), ("b/1.png", 1, "b")]), ("val", []), ("test", [("a/2.png", 1, "a")])]
    with pytest.raises(SplitEntryError, match=r"entry 0 of \"test\" .*label 1 is class 'b' elsewhere"):
        check_split_entries("split.json", lists, "/data")
    lists = [("train", [("a/1.png", 0, "a"), ("a/2.png", 1, "a")]), ("val", []), ("test", [])]
    with pytest.raises(SplitEntryError, match=r"entry 1 of \"train\" .*class 'a' has label 0 elsewhere in the file "
                                              r"\(one label per class name\)"):
        check_split_entries("split.json", lists, "/data")


def test_2_an_image_library_entry_that_does_not_fit_is_named(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "1.png").write_bytes(b"")
    library = tmp_path / "library.json"
    rewrite(library, {"train": [["a/1.png", 0, "red circle"], ["a/1.png", 1, "red circle"]], "val": [], "test": []})
    with pytest.raises(ValueError, match=rf'Image library {library}: entry 1 of "train" .*class \'red circle\' has '
                                         r"label 0 elsewhere"):
        read_image_library(str(library), ["red circle"], image_dir=str(tmp_path))
    rewrite(library, {"red circle": ["../outside.png"]})
    with pytest.raises(ValueError, match=r"the image path '../outside.png' is not inside the image folder"):
        read_image_library(str(library), ["red circle"], image_dir=str(tmp_path))


def test_2_a_fewshot_cache_entry_that_is_not_of_the_split_is_named(shapes_root, tiny_clip_path, tmp_path):
    from datasets.datum_pickle import load_datum_pickle, save_datum_pickle

    run_train("--no-train", *train_argv("CoOp", shapes_root, tiny_clip_path, tmp_path / "probe"))  # the 4-shot cache
    dataset_dir = os.path.join(shapes_root, "shapes")
    cache = os.path.join(dataset_dir, "split_fewshot", "shot_4-seed_1.pkl")
    data = load_datum_pickle(cache, dataset_dir)
    victim = data["train"][1]
    victim.__dict__["_label"] = (victim.label + 1) % 6  # an edited cache: the same image under another label
    save_datum_pickle(cache, data)
    out = tmp_path / "run"
    with pytest.raises(ValueError, match=rf'^Few-shot cache {cache}: entry 1 of "train" .*not an entry of the '
                                         r"dataset's split .*; delete it to draw again"):
        run_train(*train_argv("CoOp", shapes_root, tiny_clip_path, out))
    assert nothing_trained(out)


# ---- 5. the rest of the input surface ------------------------------------------------------------------------


@pytest.mark.parametrize("opts, message", [
    (("OPTIM.LR", -0.002), "OPTIM.LR must be a positive number, got -0.002"),
    (("OPTIM.LR", 0.0), "OPTIM.LR must be a positive number, got 0.0"),
    (("DATALOADER.TRAIN_X.BATCH_SIZE", 0), "DATALOADER.TRAIN_X.BATCH_SIZE must be at least 1, got 0"),
    (("DATALOADER.TEST.BATCH_SIZE", 0), "DATALOADER.TEST.BATCH_SIZE must be at least 1, got 0"),
    (("DATALOADER.NUM_WORKERS", -1), "DATALOADER.NUM_WORKERS must be 0 .* got -1"),
])
def test_5_a_value_out_of_range_is_refused_with_its_key(shapes_root, tiny_clip_path, tmp_path, opts, message):
    out = tmp_path / "run"
    with pytest.raises(ValueError, match=message):
        run_train(*train_argv("CoOp", shapes_root, tiny_clip_path, out, *opts))
    assert nothing_trained(out)


@pytest.fixture(scope="module")
def coop_run(shapes12, coop_stage1, tiny_clip_path):
    """A finished CoOp run: the session's stage 1 on the 12-class shapes dataset."""
    return {"root": shapes12, "clip": tiny_clip_path, "run": coop_stage1}


@pytest.mark.parametrize("opts, message", [
    (("TRAINER.DPC.WEIGHT_BASE", 1.5), r"TRAINER.DPC.WEIGHT_BASE must lie in \[0, 1\], got 1.5"),
    (("TRAINER.DPC.WEIGHT_BASE", -0.1), r"TRAINER.DPC.WEIGHT_BASE must lie in \[0, 1\], got -0.1"),
    (("TRAINER.DPC.TOPK", 0), "TRAINER.DPC.TOPK must be >= 1"),
])
def test_5_a_dpc_value_out_of_range_is_refused_before_training(coop_run, tmp_path, opts, message):
    out = tmp_path / "dpc"
    with pytest.raises(ValueError, match=message):
        run_train(*train_argv("DPC", coop_run["root"], coop_run["clip"], out, "TRAINER.DPC.BACKBONE_DIR",
                              coop_run["run"], *opts, epochs=1, print_freq=None))
    assert not (out / "results.json").exists() and not (out / "dual_prompts").exists()


def test_5_a_dataset_folder_without_a_class_its_split_names_is_named(split, shapes_root, tiny_clip_path, tmp_path):
    import shutil

    folder = os.path.join(shapes_root, "shapes", "green_square")
    shutil.rmtree(folder)
    out = tmp_path / "run"
    with pytest.raises(FileNotFoundError, match=f"missing on disk: {folder}/.*the folder {folder} of class "
                                                "'green_square' does not exist"):
        run_train(*train_argv("CoOp", shapes_root, tiny_clip_path, out))
    assert nothing_trained(out)


def test_5_a_checkpoint_of_another_host_is_refused_as_model_dir(coop_run, tmp_path):
    """KgCoOp's prompt learner has CoOp's shape: without the check it would evaluate CoOp's prompt as KgCoOp's."""
    out = tmp_path / "eval"
    with pytest.raises(ConfigError, match=f"--model-dir: {coop_run['run']}/prompt_learner/model.pth.tar-2 was "
                                          "trained by CoOp, not KgCoOp: evaluate it with --trainer CoOp"):
        run_train("--eval-only", "--model-dir", coop_run["run"], "--load-epoch", 2,
                  *train_argv("KgCoOp", coop_run["root"], coop_run["clip"], out, subsample="new"))
    assert not (out / "results.json").exists()


def test_5_a_checkpoint_of_another_backbone_is_refused_as_model_dir(coop_run, tmp_path):
    """A CLIP of the same width (so prompts of the same shape) but other weights."""
    import torch

    from trainers.prompted_clip import save_tiny_clip

    torch.manual_seed(7)
    other = save_tiny_clip(str(tmp_path / "other_clip.pt"))
    out = tmp_path / "eval"
    with pytest.raises(ConfigError, match=f"was trained on the backbone {coop_run['clip']}, not {other}: set "
                                          f"MODEL.BACKBONE.NAME {coop_run['clip']}"):
        run_train("--eval-only", "--model-dir", coop_run["run"], "--load-epoch", 2,
                  *train_argv("CoOp", coop_run["root"], other, out, subsample="new"))
    assert not (out / "results.json").exists()


def older_release_record(accuracy, dataset="ImageFolder", seed=1, subsample="base"):
    """What a release before run identities wrote: the numbers, no ``run_id`` and no ``identity``."""
    from support.records import finished_record

    record = finished_record(accuracy, dataset, seed, subsample)
    del record["run_id"], record["identity"]
    return record


def test_5_a_results_json_of_an_older_release_is_not_a_finished_run(shapes_root, tiny_clip_path, tmp_path, capsys):
    """train.py trains the run again (its record replaced by a valid one), the pipeline reruns it, saying why, and
    the tables leave it out, naming it."""
    from support.records import mark_finished

    from tools import output_folders as layout
    from tools.pipeline.plan import Spec, build_plan
    from tools.pipeline.runner import RAN, execute, summarize
    from tools.tables import cli as tables
    from trainers.run.record import load_record, write_results

    out = tmp_path / "run"
    write_results(str(out), older_release_record(99.0))
    assert "lacks 'run_id'" in load_record(str(out))[1]
    run_train(*train_argv("CoOp", shapes_root, tiny_clip_path, out, epochs=1))
    record, problem = load_record(str(out))
    assert problem == "" and record["accuracy"] != 99.0 and record["identity"]["trainer"] == "CoOp"

    (tmp_path / "good.yaml").write_text('DATASET:\n  NAME: "ImageFolder"\n  FOLDER: "good"\n')
    spec = Spec(host="CoOp", root=str(tmp_path), out=str(tmp_path / "out"), seeds=[1],
                datasets=[str(tmp_path / "good.yaml")], host_config="cpu_tiny", dpc_config="cpu_tiny")
    runs = build_plan(spec, warn=lambda m: None)
    for run in runs:
        mark_finished(run)
    write_results(runs[0].output_dir, older_release_record(99.0))
    rerun = []

    def fake_train(run, output_file):
        rerun.append(run.stage)
        mark_finished(run)
        return 0

    outcomes = execute(runs, executor=fake_train, progress=False, echo=lambda line: None)
    assert rerun == ["host-train", "host-test", "dpc-train", "dpc-test"]  # the host, and all made from it
    summary = summarize(outcomes)
    assert outcomes[0].status == RAN and "lacks 'run_id'" in summary and ".stale-" in summary

    table_root = tmp_path / "tables"
    directory = layout.run_dir(str(table_root), layout.BASE2NEW, "train", "caltech101", 16, "CoOp", "c", 1)
    write_results(directory, older_release_record(80.0, "Caltech101"))
    tables.main([str(table_root), "--paper", "none"])
    assert "train_base/caltech101/shots_16/CoOp/c/seed1/results.json lacks 'run_id'" in capsys.readouterr().err


def test_5_a_dpc_checkpoint_of_another_host_is_refused_as_model_dir(coop_run, tmp_path):
    def dpc(out, *opts, subsample, flags=()):
        return train_argv("DPC", coop_run["root"], coop_run["clip"], out, *opts, subsample=subsample, flags=flags,
                          epochs=1, print_freq=None)

    run_dir, out = tmp_path / "dpc", tmp_path / "eval"
    run_train(*dpc(run_dir, "TRAINER.DPC.BACKBONE_DIR", coop_run["run"], subsample="base"))
    with pytest.raises(ConfigError, match=f"TRAINER.DPC.HOST is 'KgCoOp', but {run_dir}/dual_prompts/"
                                          "model.pth.tar-1 holds prompts of 'CoOp'"):
        run_train(*dpc(out, "TRAINER.DPC.HOST", "KgCoOp", subsample="new", flags=("--eval-only", "--model-dir",
                                                                                   run_dir)))
    assert not (out / "results.json").exists()

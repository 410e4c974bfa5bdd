"""Bad inputs are refused before anything trains, in one line that names the file and the entry, and leave no
checkpoint and no results.json: split entries that do not fit the dataset, image libraries and few-shot caches
of the same kind, values out of range, a dataset folder without a class its split names, a checkpoint of another
backbone or host (docs/RELIABILITY.md)."""
import json
import os

import pytest

from conftest import coop_args, run_train
from trainers.dpc.negative_pool import read_image_library


def nothing_trained(out):
    return not os.path.exists(os.path.join(out, "results.json")) and not os.path.exists(
        os.path.join(out, "prompt_learner"))


@pytest.fixture
def split(shapes_root, tiny_clip_path, tmp_path):
    """The shapes dataset's split file as train.py writes it: (path, its content)."""
    run_train("--no-train", *coop_args(shapes_root, tiny_clip_path, tmp_path / "probe"))
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
        run_train(*coop_args(shapes_root, tiny_clip_path, out))
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

    run_train("--no-train", *coop_args(shapes_root, tiny_clip_path, tmp_path / "probe"))  # draws the 4-shot cache
    dataset_dir = os.path.join(shapes_root, "shapes")
    cache = os.path.join(dataset_dir, "split_fewshot", "shot_4-seed_1.pkl")
    data = load_datum_pickle(cache, dataset_dir)
    victim = data["train"][1]
    victim.__dict__["_label"] = (victim.label + 1) % 6  # an edited cache: the same image under another label
    save_datum_pickle(cache, data)
    out = tmp_path / "run"
    with pytest.raises(ValueError, match=rf'^Few-shot cache {cache}: entry 1 of "train" .*not an entry of the '
                                         r"dataset's split .*; delete it to draw again"):
        run_train(*coop_args(shapes_root, tiny_clip_path, out))
    assert nothing_trained(out)

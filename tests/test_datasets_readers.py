"""Every benchmark reader on a generated tree: raw annotations -> split file, split file -> lists, base/new."""
import json
import math
import os
import random
import shutil

import pytest
from support.dataset_fixtures import (
    BUILDERS,
    RAW_METADATA,
    SPLIT_READERS,
    build,
    label_counts,
    triples,
    write_json_fixture,
)

SPLITS = ("train", "val", "test")


def check_expected(dataset, expected):
    n = len(expected.classnames)
    assert dataset.classnames == expected.classnames
    assert dataset.num_classes == n
    assert dataset.lab2cname == dict(enumerate(expected.classnames))
    for split, counts in expected.counts.items():
        items = getattr(dataset, "train_x" if split == "train" else split)
        assert label_counts(items, n) == counts, split
        # every item of a label carries that label's class name
        assert {(d.label, d.classname) for d in items} == set(enumerate(expected.classnames))
        assert all(os.path.isabs(d.impath) and os.path.isfile(d.impath) for d in items)
        assert all(d.domain == 0 for d in items)


@pytest.mark.parametrize("name", sorted(SPLIT_READERS))
def test_raw_annotations_write_the_split_file_then_it_is_read(tmp_path, name):
    builder, folder, prefix = SPLIT_READERS[name]
    expected = builder(str(tmp_path))
    random.seed(1)
    first = build(tmp_path, name, generate_split=True)
    check_expected(first, expected)
    assert os.path.isdir(os.path.join(expected.dataset_dir, "split_fewshot_generated"))  # its draws apart too

    split_path = os.path.join(expected.dataset_dir, f"split_generated_{name}.json")  # beside the published one
    assert not os.path.exists(os.path.join(expected.dataset_dir, f"split_zhou_{name}.json"))
    with open(split_path) as f:
        text = f.read()
    stored = json.loads(text)
    assert list(stored) == list(SPLITS)  # written in the reference's key order
    assert text.startswith('{\n    "train": [\n        [\n')  # indent=4, one value per line
    prefix_dir = os.path.join(expected.dataset_dir, prefix) if prefix else expected.dataset_dir
    for split, items in zip(SPLITS, (first.train_x, first.val, first.test)):
        assert [tuple(entry) for entry in stored[split]] == [
            (os.path.relpath(d.impath, prefix_dir), d.label, d.classname) for d in items]
    # splits are disjoint and together hold every image of the tree
    all_paths = [d.impath for d in (*first.train_x, *first.val, *first.test)]
    assert len(set(all_paths)) == len(all_paths)

    # Second run: the split file is read; the raw metadata is not needed any more.
    for entry in RAW_METADATA.get(name, []):
        path = os.path.join(expected.dataset_dir, entry)
        shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
    second = build(tmp_path, name, generate_split=True)
    for split in ("train_x", "val", "test"):
        assert triples(getattr(second, split)) == triples(getattr(first, split))


@pytest.mark.parametrize("name", sorted(SPLIT_READERS))
def test_split_file_is_read_verbatim(tmp_path, name):
    expected, classnames = write_json_fixture(str(tmp_path), name, trailing_newline=name != "Food101")
    dataset = build(tmp_path, name)
    assert triples(dataset.train_x) == expected["train"]
    assert triples(dataset.val) == expected["val"]
    assert triples(dataset.test) == expected["test"]
    assert dataset.classnames == classnames  # no renaming or underscore replacement


@pytest.mark.parametrize("name", sorted(SPLIT_READERS))
def test_base_and_new_halves_are_relabelled(tmp_path, name):
    expected, classnames = write_json_fixture(str(tmp_path), name)
    base = build(tmp_path, name, subsample="base")
    new = build(tmp_path, name, subsample="new")
    m = math.ceil(len(classnames) / 2)  # 3 classes: base = labels 0, 1; new = label 2 -> 0
    assert base.classnames == classnames[:m] and new.classnames == classnames[m:]
    assert base.num_classes == 2 and new.num_classes == 1
    for split, attr in (("train", "train_x"), ("val", "val"), ("test", "test")):
        want_base = [(p, y, c) for p, y, c in expected[split] if y < m]
        want_new = [(p, y - m, c) for p, y, c in expected[split] if y >= m]
        assert triples(getattr(base, attr)) == want_base
        assert triples(getattr(new, attr)) == want_new


def test_fgvc_aircraft_reads_the_official_split_every_time(tmp_path):
    expected = BUILDERS["FGVCAircraft"](str(tmp_path))
    dataset = build(tmp_path, "FGVCAircraft")
    check_expected(dataset, expected)
    assert os.path.basename(dataset.train_x[0].impath) == "0034300.jpg"  # leading zeros kept
    assert not [f for f in os.listdir(expected.dataset_dir) if f.endswith(".json")]  # no split file
    # Label = line of variants.txt, whatever order the split files list them in.
    with open(os.path.join(expected.dataset_dir, "images_variant_test.txt")) as f:
        lines = f.read().splitlines()
    with open(os.path.join(expected.dataset_dir, "images_variant_test.txt"), "w") as f:
        f.write("\n".join(reversed(lines)) + "\n")
    again = build(tmp_path, "FGVCAircraft")
    assert [d.label for d in again.test] == [2, 1, 0]
    assert [d.classname for d in again.test] == ["F-16A/B", "Cessna 172", "707-320"]
    base = build(tmp_path, "FGVCAircraft", subsample="new")
    assert base.classnames == ["F-16A/B"] and {d.label for d in base.test} == {0}


def test_imagenet_scans_wnid_folders_and_uses_val_as_test(tmp_path):
    expected = BUILDERS["ImageNet"](str(tmp_path))
    dataset = build(tmp_path, "ImageNet")
    check_expected(dataset, expected)
    assert dataset.val is dataset.test
    assert os.path.isfile(os.path.join(expected.dataset_dir, "preprocessed.pkl"))
    assert all("/images/val/" in d.impath for d in dataset.test)
    with open(os.path.join(expected.dataset_dir, "preprocessed.pkl"), "r+b") as f:
        f.truncate(100)  # a scan cut short: read as missing, scanned again and rewritten
    check_expected(build(tmp_path, "ImageNet"), expected)
    check_expected(build(tmp_path, "ImageNet"), expected)

    base = build(tmp_path, "ImageNet", subsample="base")
    new = build(tmp_path, "ImageNet", subsample="new")
    assert base.classnames == ["tench", "goldfish"] and new.classnames == ["great white shark"]
    assert base.val is base.test and label_counts(base.test, 2) == [2, 2]
    assert {d.label for d in new.train_x} == {0} and len(new.test) == 2


@pytest.mark.parametrize("name", ["ImageNetSketch", "ImageNetA", "ImageNetR"])
def test_sorted_wnid_test_sets(tmp_path, name):
    expected = BUILDERS[name](str(tmp_path))
    dataset = build(tmp_path, name, shots=2, subsample="base")  # both ignored for test-only sets
    check_expected(dataset, expected)
    assert dataset.classnames == ["goldfish", "great white shark", "tiger shark"]  # wnids #2-#4 -> labels 0-2
    assert dataset.val is None and dataset.train_x is dataset.test
    assert sorted(os.listdir(expected.dataset_dir)) == sorted(["classnames.txt", os.path.basename(dataset.image_dir)])


@pytest.fixture(scope="module")
def imagenetv2_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("v2")
    return str(root), BUILDERS["ImageNetV2"](str(root))


def test_imagenetv2_labels_are_folder_numbers(imagenetv2_root):
    root, expected = imagenetv2_root
    dataset = build(root, "ImageNetV2")
    check_expected(dataset, expected)
    assert dataset.val is None and len(dataset.test) == 1000
    by_label = {d.label: d for d in dataset.test}
    assert by_label[2].classname == "great white shark"
    assert by_label[2].impath.endswith(os.path.join("imagenetv2-matched-frequency-format-val", "2", "0.jpeg"))

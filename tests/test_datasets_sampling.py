"""Split generation, few-shot sampling and their caches against the documented procedures (docs/DATASETS.md)."""
import math
import os
import random
import shutil

import pytest
from support.dataset_fixtures import (
    BUILDERS,
    SPLIT_READERS,
    build,
    triples,
    write_json_fixture,
)
from support.fake_dassl import read_as_dassl, write_dassl_pickle

from datasets.fewshot import subsample_classes
from datasets.toolbox import Datum, make_datum

# --- the procedures as DATASETS.md states them, written independently of datasets/ ----------------------------

def by_label(items):
    groups = {}
    for item in items:
        groups.setdefault(item[1], []).append(item)
    return groups


def documented_fewshot(items, k):
    out = []
    for group in by_label(items).values():
        out.extend(random.sample(group, k) if len(group) >= k else group)
    return out


def documented_trainval(items):
    train, val = [], []
    for group in by_label(items).values():
        n_val = round(len(group) * 0.2)
        random.shuffle(group)
        val.extend(group[:n_val])
        train.extend(group[n_val:])
    return train, val


def documented_50_20_30(groups):
    train, val, test = [], [], []
    for group in groups:
        random.shuffle(group)
        n_train, n_val = round(len(group) * 0.5), round(len(group) * 0.2)
        train.extend(group[:n_train])
        val.extend(group[n_train:n_train + n_val])
        test.extend(group[n_train + n_val:])
    return train, val, test


# --- split generation ---------------------------------------------------------------------------------------

def test_pets_trainval_split_matches_the_documented_shuffle(tmp_path):
    expected = BUILDERS["OxfordPets"](str(tmp_path))
    with open(os.path.join(expected.dataset_dir, "annotations", "trainval.txt")) as f:
        lines = [line.split() for line in f]
    listed = [(os.path.join(expected.dataset_dir, "images", stem + ".jpg"), int(class_id) - 1,
               "_".join(stem.split("_")[:-1]).lower()) for stem, class_id, _, _ in lines]
    random.seed(3)
    want_train, want_val = documented_trainval(listed)
    random.seed(3)
    dataset = build(tmp_path, "OxfordPets", generate_split=True)
    assert triples(dataset.train_x) == want_train and triples(dataset.val) == want_val


def test_folder_split_matches_the_documented_shuffle(tmp_path):
    expected = BUILDERS["DescribableTextures"](str(tmp_path))
    image_dir = os.path.join(expected.dataset_dir, "images")
    groups = [[(os.path.join(image_dir, c, f), label, c) for f in os.listdir(os.path.join(image_dir, c))]
              for label, c in enumerate(sorted(os.listdir(image_dir)))]
    random.seed(5)
    want = documented_50_20_30(groups)
    random.seed(5)
    dataset = build(tmp_path, "DescribableTextures", generate_split=True)
    assert (triples(dataset.train_x), triples(dataset.val), triples(dataset.test)) == want


def test_flowers_split_groups_classes_by_first_appearance(tmp_path):
    expected = BUILDERS["OxfordFlowers"](str(tmp_path))
    labels = [2, 1, 1, 2, 3, 1, 2, 3, 3, 1, 2, 3, 1, 2, 3]  # as written by make_oxford_flowers
    groups = {}
    for i, y in enumerate(labels):
        path = os.path.join(expected.dataset_dir, "jpg", f"image_{i + 1:05d}.jpg")
        groups.setdefault(y, []).append((path, y - 1, expected.classnames[y - 1]))
    random.seed(7)
    want = documented_50_20_30(list(groups.values()))
    random.seed(7)
    dataset = build(tmp_path, "OxfordFlowers", generate_split=True)
    assert (triples(dataset.train_x), triples(dataset.val), triples(dataset.test)) == want


# --- few-shot sampling and its cache ------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(SPLIT_READERS))
@pytest.mark.parametrize("shots", [2, 8])
def test_fewshot_matches_the_documented_sampling(tmp_path, name, shots):
    expected, _ = write_json_fixture(str(tmp_path), name, per_split={"train": 5, "val": 3, "test": 2})
    random.seed(1)  # what train.py's set_random_seed(1) does before the reader runs
    want_train = documented_fewshot(expected["train"], shots)
    want_val = documented_fewshot(expected["val"], min(shots, 4))
    random.seed(1)
    dataset = build(tmp_path, name, shots=shots, seed=1)
    assert triples(dataset.train_x) == want_train
    assert triples(dataset.val) == want_val
    assert triples(dataset.test) == expected["test"]  # never subsampled

    cache = os.path.join(tmp_path, SPLIT_READERS[name][1], "split_fewshot", f"shot_{shots}-seed_1.pkl")
    assert read_as_dassl(cache) == {"train": want_train, "val": want_val}  # Dassl could read it
    random.seed(12345)  # the cache, not the random stream, decides now
    new = build(tmp_path, name, shots=shots, seed=1, subsample="new")
    assert triples(new.train_x) == [(p, 0, c) for p, y, c in want_train if y == 2]


@pytest.mark.parametrize("protocol", [4, 5])
def test_dassl_written_fewshot_cache_loads_without_dassl(tmp_path, protocol):
    expected, classnames = write_json_fixture(str(tmp_path), "OxfordPets")
    chosen = {"train": expected["train"][::-1][:5], "val": expected["val"][:2]}  # not what sampling would give
    path = os.path.join(tmp_path, "oxford_pets", "split_fewshot", "shot_16-seed_1.pkl")
    write_dassl_pickle(path, chosen, protocol=protocol)
    dataset = build(tmp_path, "OxfordPets", shots=16, seed=1)
    assert triples(dataset.train_x) == chosen["train"]
    assert triples(dataset.val) == chosen["val"]
    assert type(dataset.train_x[0]) is Datum

    base = build(tmp_path, "OxfordPets", shots=16, seed=1, subsample="base")
    assert triples(base.train_x) == [t for t in chosen["train"] if t[1] < 2]


def test_fewshot_cache_from_a_moved_data_folder_is_rerooted(tmp_path):
    expected, _ = write_json_fixture(str(tmp_path / "new_place"), "EuroSAT")
    old_root = "/old/machine/DATA"
    new_root = str(tmp_path / "new_place")
    moved = {key: [(p.replace(new_root, old_root), y, c) for p, y, c in items[:3]]
             for key, items in (("train", expected["train"]), ("val", expected["val"]))}
    write_dassl_pickle(os.path.join(new_root, "eurosat", "split_fewshot", "shot_1-seed_2.pkl"), moved)
    dataset = build(new_root, "EuroSAT", shots=1, seed=2)
    assert triples(dataset.train_x) == expected["train"][:3]
    assert triples(dataset.val) == expected["val"][:3]


def test_fewshot_cache_of_another_split_file_is_resampled(tmp_path, capsys):
    write_json_fixture(str(tmp_path), "Food101", per_split={"train": 5, "val": 3, "test": 1})
    build(tmp_path, "Food101", shots=2, seed=1)
    changed, _ = write_json_fixture(str(tmp_path), "Food101", per_split={"train": 3, "val": 2, "test": 1})
    random.seed(9)
    want_train = documented_fewshot(changed["train"], 2)
    random.seed(9)
    dataset = build(tmp_path, "Food101", shots=2, seed=1)
    assert "sampled from a different split" in capsys.readouterr().out
    assert triples(dataset.train_x) == want_train


def test_imagenet_fewshot_caches_train_only_and_keeps_full_val(tmp_path):
    BUILDERS["ImageNet"](str(tmp_path))
    random.seed(1)
    dataset = build(tmp_path, "ImageNet", shots=2, seed=1)
    assert len(dataset.train_x) == 6 and len(dataset.test) == 6 and dataset.val is dataset.test
    cache = read_as_dassl(os.path.join(tmp_path, "imagenet", "split_fewshot", "shot_2-seed_1.pkl"))
    assert list(cache) == ["train"] and cache["train"] == triples(dataset.train_x)


def test_subsample_classes_halves_the_labels_present_in_train():
    def items(labels):
        return [make_datum(impath=f"/x/{i}.jpg", label=y, classname=f"c{y}") for i, y in enumerate(labels)]

    train, test = items([4, 0, 2, 6, 8]), items([0, 1, 2, 4, 6, 8, 9])
    base_train, base_test = subsample_classes(train, test, subsample="base")
    new_train, new_test = subsample_classes(train, test, subsample="new")
    assert math.ceil(5 / 2) == 3
    assert [(d.label, d.classname) for d in base_train] == [(2, "c4"), (0, "c0"), (1, "c2")]
    assert [d.classname for d in base_test] == ["c0", "c2", "c4"]  # 1 and 9 are absent from train: dropped
    assert [(d.label, d.classname) for d in new_train] == [(0, "c6"), (1, "c8")]
    assert [d.label for d in new_test] == [0, 1]
    assert subsample_classes(train, test, subsample="all") == (train, test)
    with pytest.raises(ValueError, match="base"):
        subsample_classes(train, subsample="novel")


# --- imagenet/preprocessed.pkl ------------------------------------------------------------------------------

def test_imagenet_cache_is_dassl_readable_and_reused(tmp_path):
    BUILDERS["ImageNet"](str(tmp_path))
    first = build(tmp_path, "ImageNet")
    stored = read_as_dassl(os.path.join(tmp_path, "imagenet", "preprocessed.pkl"))
    assert stored == {"train": triples(first.train_x), "test": triples(first.test)}
    os.remove(os.path.join(tmp_path, "imagenet", "classnames.txt"))  # the cache alone is enough
    second = build(tmp_path, "ImageNet")
    assert triples(second.train_x) == triples(first.train_x)


def test_dassl_written_imagenet_cache_is_used_and_rerooted(tmp_path):
    expected = BUILDERS["ImageNet"](str(tmp_path))
    os.remove(os.path.join(expected.dataset_dir, "classnames.txt"))
    lists = {}
    for key, split in (("train", "train"), ("test", "val")):
        split_dir = os.path.join(expected.dataset_dir, "images", split)
        lists[key] = [(os.path.join("/elsewhere/data/imagenet/images", split, wnid, f), label, f"pickled {label}")
                      for label, wnid in enumerate(sorted(os.listdir(split_dir)))
                      for f in sorted(os.listdir(os.path.join(split_dir, wnid)))]
    write_dassl_pickle(os.path.join(expected.dataset_dir, "preprocessed.pkl"), lists, protocol=4)
    dataset = build(tmp_path, "ImageNet")
    assert dataset.classnames == ["pickled 0", "pickled 1", "pickled 2"]  # names come from the cache
    assert triples(dataset.test) == [(p.replace("/elsewhere/data", str(tmp_path)), y, c) for p, y, c in lists["test"]]


def test_stale_imagenet_cache_is_rebuilt(tmp_path):
    expected = BUILDERS["ImageNet"](str(tmp_path))
    assert len(build(tmp_path, "ImageNet").test) == 6
    wnid_dir = os.path.join(expected.dataset_dir, "images", "val", "n01440764")
    added = os.path.join(wnid_dir, "added.JPEG")
    shutil.copy(os.path.join(wnid_dir, os.listdir(wnid_dir)[0]), added)
    os.utime(wnid_dir, ns=(1, 1))  # a folder mtime that cannot match the one recorded
    dataset = build(tmp_path, "ImageNet")
    assert len(dataset.test) == 7 and added in [d.impath for d in dataset.test]

    # A Dassl-written cache has no signature: a listed image that is gone still triggers a rescan.
    write_dassl_pickle(os.path.join(expected.dataset_dir, "preprocessed.pkl"),
                       {"train": triples(dataset.train_x), "test": triples(dataset.test)})
    os.remove(added)
    assert len(build(tmp_path, "ImageNet").test) == 6

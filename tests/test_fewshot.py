"""Few-shot sampling and its ``split_fewshot/shot_K-seed_S.pkl`` cache (docs/DATASETS.md); base/new classes."""
import json
import os
import pickle
import random
import shutil
import sys

import pytest
from support.fake_dassl import DASSL_MODULE, fake_dassl_installed

import datasets  # noqa: F401  (registers the readers)
import trainers
from datasets.fewshot import fewshot_splits, generate_fewshot_dataset, subsample_classes
from datasets.shapes import make_shapes_dataset
from datasets.toolbox import HAVE_DASSL, Datum, build_dataset, make_datum
from trainers.engine import get_cfg_default, set_random_seed


def as_tuples(items):
    return [(d.impath, d.label, d.domain, d.classname) for d in items]


def reference_fewshot(items, k):
    """The documented procedure, written out: per label in first-appearance order, ``random.sample(items, k)``
    or all."""
    by_label = {}
    for item in items:
        by_label.setdefault(item.label, []).append(item)
    out = []
    for group in by_label.values():
        out.extend(random.sample(group, k) if len(group) >= k else group)
    return out


def touch(path):
    """An empty image file (Dassl's Datum checks that its file exists)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    open(path, "w").close()
    return path


def make_items(root, counts, order=None):
    """Datums with labels in an interleaved order: ``counts[label]`` items per label."""
    pending = {label: list(range(n)) for label, n in counts.items()}
    labels = order or [label for label, n in counts.items() for _ in range(n)]
    items = []
    for label in labels:
        i = pending[label].pop(0)
        impath = touch(os.path.join(root, f"c{label}", f"{i:03d}.jpg"))
        items.append(make_datum(impath=impath, label=label, classname=f"class_{label}"))
    assert not any(pending.values())
    return items


@pytest.fixture
def toy(tmp_path):
    """A dataset dir and train/val lists whose labels first appear in the order 2, 0, 1 (3 has few items)."""
    dataset_dir = str(tmp_path / "toy")
    os.makedirs(dataset_dir)
    order = [2, 0, 2, 1, 0, 2, 0, 1, 1, 2, 0, 2, 1, 3, 0, 2, 1, 0, 2, 1, 0, 1]
    train = make_items(dataset_dir, {2: 7, 0: 7, 1: 7, 3: 1}, order)
    val = make_items(os.path.join(dataset_dir, "v"), {1: 6, 0: 5, 2: 2}, [1, 0, 1, 1, 2, 0, 0, 1, 0, 2, 1, 0, 1])
    return dataset_dir, train, val


# ---- sampling ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shots,seed", [(1, 1), (2, 2), (4, 3), (5, 0), (16, 1)])
def test_sampling_is_the_reference_procedure(toy, shots, seed):
    dataset_dir, train, val = toy
    random.seed(seed)
    got_train, got_val = fewshot_splits(dataset_dir, shots, seed, train, val)
    random.seed(seed)
    want_train = reference_fewshot(train, shots)
    want_val = reference_fewshot(val, min(shots, 4))
    assert as_tuples(got_train) == as_tuples(want_train)
    assert as_tuples(got_val) == as_tuples(want_val)
    # labels come out grouped, in order of first appearance; K per label (all of label 3, which has 1)
    labels = [d.label for d in got_train]
    assert labels == sorted(labels, key=[2, 0, 1, 3].index)
    assert [labels.count(label) for label in (2, 0, 1, 3)] == [min(shots, 7)] * 3 + [1]
    assert os.path.isfile(os.path.join(dataset_dir, "split_fewshot", f"shot_{shots}-seed_{seed}.pkl"))


def test_sampling_is_deterministic_per_seed(toy):
    _, train, val = toy

    def sample(seed):
        random.seed(seed)
        return as_tuples(generate_fewshot_dataset(train, num_shots=3))

    assert sample(1) == sample(1)
    assert sample(1) != sample(2)


def test_fewer_items_than_shots_keeps_all_without_duplicates(toy, capsys):
    _, train, _ = toy
    random.seed(0)
    sampled = generate_fewshot_dataset(train, num_shots=10)  # every label has fewer than 10 items
    assert as_tuples(sampled) == as_tuples(sorted(train, key=lambda d: [2, 0, 1, 3].index(d.label)))
    assert capsys.readouterr().out.count("Creating a 10-shot dataset") == 1


def test_no_shots_returns_the_splits_unchanged(toy):
    dataset_dir, train, val = toy
    assert generate_fewshot_dataset(train, num_shots=-1) is train
    got_train, got_val = fewshot_splits(dataset_dir, -1, 1, train, val)
    assert got_train is train and got_val is val
    assert not os.path.exists(os.path.join(dataset_dir, "split_fewshot"))


# ---- the cache ---------------------------------------------------------------------------------------------


def test_cache_is_reused(toy, capsys):
    dataset_dir, train, val = toy
    random.seed(1)
    first = fewshot_splits(dataset_dir, 2, 1, train, val)
    path = os.path.join(dataset_dir, "split_fewshot", "shot_2-seed_1.pkl")
    assert f"Saving preprocessed few-shot data to {path}" in capsys.readouterr().out

    random.seed(999)  # a fresh sample would differ ...
    resampled = reference_fewshot(train, 2)
    assert as_tuples(resampled) != as_tuples(first[0])
    random.seed(999)
    second = fewshot_splits(dataset_dir, 2, 1, train, val)  # ... but the cache is read
    out = capsys.readouterr().out
    assert f"Loading preprocessed few-shot data from {path}" in out and "Creating" not in out
    assert as_tuples(second[0]) == as_tuples(first[0]) and as_tuples(second[1]) == as_tuples(first[1])
    assert all(type(d) is Datum for d in second[0] + second[1])


@pytest.mark.parametrize("change", ["relabel_train", "drop_train", "extend_val"])
def test_cache_of_another_split_is_not_reused(toy, capsys, change):
    dataset_dir, train, val = toy
    random.seed(1)
    fewshot_splits(dataset_dir, 2, 1, train, val)
    if change == "relabel_train":
        d = train[0]
        train = [make_datum(impath=d.impath, label=1, classname="class_1")] + train[1:]
    elif change == "drop_train":
        train = train[:-1]
    else:
        extra = touch(os.path.join(dataset_dir, "v", "extra.jpg"))
        val = val + [make_datum(impath=extra, label=2, classname="class_2")]
    capsys.readouterr()

    random.seed(1)
    got_train, got_val = fewshot_splits(dataset_dir, 2, 1, train, val)
    assert "sampled from a different split" in capsys.readouterr().out
    random.seed(1)
    assert as_tuples(got_train) == as_tuples(reference_fewshot(train, 2))
    assert as_tuples(got_val) == as_tuples(reference_fewshot(val, 2))

    random.seed(5)  # the rewritten cache now belongs to the new split and is reused
    again = fewshot_splits(dataset_dir, 2, 1, train, val)
    assert "different split" not in capsys.readouterr().out
    assert as_tuples(again[0]) == as_tuples(got_train)


@pytest.mark.parametrize("damage", ["empty", "truncated"])
def test_an_unreadable_cache_is_drawn_again_and_rewritten(toy, capsys, damage):
    dataset_dir, train, val = toy
    random.seed(1)
    first = fewshot_splits(dataset_dir, 2, 1, train, val)
    path = os.path.join(dataset_dir, "split_fewshot", "shot_2-seed_1.pkl")
    with open(path, "r+b") as f:
        f.truncate(0 if damage == "empty" else os.path.getsize(path) // 2)
    capsys.readouterr()

    random.seed(1)  # what the run's seed does before the dataset is read
    again = fewshot_splits(dataset_dir, 2, 1, train, val)
    out = capsys.readouterr().out
    reason = "empty" if damage == "empty" else "truncated or not a pickle: "
    assert f"Few-shot cache {path} cannot be read ({reason}" in out and "drawing it again and rewriting it" in out
    assert as_tuples(again[0]) == as_tuples(first[0]) and as_tuples(again[1]) == as_tuples(first[1])
    random.seed(999)
    assert as_tuples(fewshot_splits(dataset_dir, 2, 1, train, val)[0]) == as_tuples(first[0])  # read back whole
    assert "cannot be read" not in capsys.readouterr().out


# ---- the cache through a reader (ImageFolder on the shapes dataset) ----------------------------------------


def shapes_cfg(root, shots=2, seed=1, subsample="all"):
    cfg = trainers.extend_cfg(get_cfg_default())
    cfg.DATASET.NAME = "ImageFolder"
    cfg.DATASET.FOLDER = "shapes"
    cfg.DATASET.ROOT = root
    cfg.DATASET.NUM_SHOTS = shots
    cfg.DATASET.SUBSAMPLE_CLASSES = subsample
    cfg.SEED = seed
    return cfg


def read_json_split(dataset_dir):
    with open(os.path.join(dataset_dir, "split_shapes.json")) as f:
        split = json.load(f)
    return {key: [make_datum(impath=os.path.join(dataset_dir, rel), label=label, classname=name)
                  for rel, label, name in entries] for key, entries in split.items()}


def test_reader_samples_like_the_reference_after_seeding(tmp_path):
    root = str(tmp_path / "data")
    dataset_dir = make_shapes_dataset(root)
    build_dataset(shapes_cfg(root, shots=-1))  # writes split_shapes.json (its own shuffles)
    split = read_json_split(dataset_dir)
    assert not os.listdir(os.path.join(dataset_dir, "split_fewshot"))

    set_random_seed(3)  # what train.py does before building the trainer
    dataset = build_dataset(shapes_cfg(root, shots=2, seed=3))
    random.seed(3)
    assert as_tuples(dataset.train_x) == as_tuples(reference_fewshot(split["train"], 2))
    assert as_tuples(dataset.val) == as_tuples(reference_fewshot(split["val"], 2))
    assert as_tuples(dataset.test) == as_tuples(split["test"])  # test is never subsampled
    assert os.path.isfile(os.path.join(dataset_dir, "split_fewshot", "shot_2-seed_3.pkl"))


def test_cache_survives_moving_the_data_root(tmp_path, capsys):
    old_root, new_root = str(tmp_path / "old"), str(tmp_path / "moved" / "data")
    make_shapes_dataset(old_root)
    set_random_seed(1)
    before = build_dataset(shapes_cfg(old_root))
    shutil.move(old_root, new_root)
    capsys.readouterr()

    set_random_seed(2)  # a different stream: equal lists below can only come from the cache
    after = build_dataset(shapes_cfg(new_root))
    out = capsys.readouterr().out
    assert "Loading preprocessed few-shot data" in out and "re-rooting" in out and "Creating" not in out
    for old, new in ((before.train_x, after.train_x), (before.val, after.val)):
        assert as_tuples(new) == [(p.replace(old_root, new_root), *rest) for p, *rest in as_tuples(old)]
        assert all(os.path.isfile(d.impath) for d in new)


# ---- Dassl-written caches ---------------------------------------------------------------------------------


def write_dassl_cache(path, splits, protocol):
    """What Dassl's reader writes: ``pickle.dump({"train": [...], "val": [...]})`` of its own Datums.

    ``splits`` maps to lists of (impath, label, domain, classname).
    """
    with fake_dassl_installed() as dassl_datum:
        data = {key: [dassl_datum(*fields) for fields in items] for key, items in splits.items()}
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            pickle.dump(data, f, protocol=protocol)
    raw = open(path, "rb").read()
    assert DASSL_MODULE.encode() in raw and b"Datum" in raw and b"_impath" in raw


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_dassl_written_cache_loads_without_dassl(toy, protocol):
    dataset_dir, train, val = toy
    chosen = {"train": as_tuples(train[::3]), "val": as_tuples(val[::2])}
    write_dassl_cache(os.path.join(dataset_dir, "split_fewshot", "shot_4-seed_2.pkl"), chosen, protocol)
    if not HAVE_DASSL:
        assert "dassl" not in sys.modules  # loaded below without any Dassl module around

    random.seed(123)
    got_train, got_val = fewshot_splits(dataset_dir, 4, 2, train, val)
    assert all(type(d) is Datum for d in got_train + got_val)
    assert as_tuples(got_train) == chosen["train"]
    assert as_tuples(got_val) == chosen["val"]


def test_dassl_written_cache_from_another_root_is_rerooted(tmp_path, capsys):
    root = str(tmp_path / "data")
    dataset_dir = make_shapes_dataset(root)
    build_dataset(shapes_cfg(root, shots=-1))
    split = read_json_split(dataset_dir)
    # Dassl stored absolute paths of the machine that wrote it
    elsewhere = "/mnt/old_machine/DATA/shapes"
    chosen = {key: [(path.replace(dataset_dir, elsewhere), *rest) for path, *rest in as_tuples(split[key][-4:])]
              for key in ("train", "val")}
    write_dassl_cache(os.path.join(dataset_dir, "split_fewshot", "shot_16-seed_1.pkl"), chosen,
                      pickle.HIGHEST_PROTOCOL)
    capsys.readouterr()

    set_random_seed(1)
    dataset = build_dataset(shapes_cfg(root, shots=16, seed=1))
    assert "re-rooting" in capsys.readouterr().out
    for key, got in (("train", dataset.train_x), ("val", dataset.val)):
        assert as_tuples(got) == as_tuples(split[key][-4:])  # the cache's choice, not a fresh sample
        assert all(os.path.isfile(d.impath) for d in got)


def test_our_cache_is_readable_by_dassl(toy):
    """The file we write names Dassl's Datum class, so the reference code (with Dassl) can load it."""
    dataset_dir, train, val = toy
    random.seed(1)
    got_train, got_val = fewshot_splits(dataset_dir, 2, 1, train, val)
    with fake_dassl_installed() as dassl_datum:
        with open(os.path.join(dataset_dir, "split_fewshot", "shot_2-seed_1.pkl"), "rb") as f:
            data = pickle.load(f)
        for key, ours in (("train", got_train), ("val", got_val)):
            assert all(type(d) is dassl_datum for d in data[key])
            assert [d.__dict__ for d in data[key]] == [
                {"_impath": d.impath, "_label": d.label, "_domain": d.domain, "_classname": d.classname} for d in ours
            ]


# ---- subsample_classes -------------------------------------------------------------------------------------


def test_subsample_base_and_new_relabel_from_zero(tmp_path):
    train = make_items(str(tmp_path), {4: 2, 0: 2, 3: 1, 1: 2, 2: 1})  # 5 labels -> 3 base, 2 new
    val = make_items(str(tmp_path / "v"), {0: 1, 4: 1, 2: 1})
    test = make_items(str(tmp_path / "t"), {3: 1, 1: 2, 4: 1, 0: 1})

    b_train, b_val, b_test = subsample_classes(train, val, test, subsample="base")
    n_train, n_val, n_test = subsample_classes(train, val, test, subsample="new")
    old_to_base, old_to_new = {0: 0, 1: 1, 2: 2}, {3: 0, 4: 1}
    for original, base, new in ((train, b_train, n_train), (val, b_val, n_val), (test, b_test, n_test)):
        assert as_tuples(base) == [(d.impath, old_to_base[d.label], 0, d.classname)
                                   for d in original if d.label in old_to_base]
        assert as_tuples(new) == [(d.impath, old_to_new[d.label], 0, d.classname)
                                  for d in original if d.label in old_to_new]
    assert {d.classname for d in b_train} == {"class_0", "class_1", "class_2"}
    assert {(d.label, d.classname) for d in n_train} == {(0, "class_3"), (1, "class_4")}


def test_subsample_uses_the_labels_of_the_first_list(tmp_path):
    train = make_items(str(tmp_path), {0: 1, 1: 1, 5: 1, 7: 1})  # ceil(4/2) = 2 base labels: 0 and 1
    test = make_items(str(tmp_path / "t"), {0: 1, 1: 1, 2: 1, 5: 1, 7: 1})
    base_train, base_test = subsample_classes(train, test, subsample="base")
    new_train, new_test = subsample_classes(train, test, subsample="new")
    assert [d.label for d in base_test] == [0, 1] and [d.label for d in new_test] == [0, 1]
    assert [d.classname for d in new_test] == ["class_5", "class_7"]  # label 2 is in neither half


def test_subsample_all_and_bad_value(tmp_path):
    train = make_items(str(tmp_path), {0: 1, 1: 1})
    assert subsample_classes(train, subsample="all")[0] is train
    with pytest.raises(ValueError, match="SUBSAMPLE_CLASSES"):
        subsample_classes(train, subsample="novel")


def test_reader_base_new_split_of_shapes(tmp_path):
    root = str(tmp_path / "data")
    make_shapes_dataset(root, colours=("red", "green", "blue"), shapes=("circle", "square", "triangle"))  # 9 classes
    full = build_dataset(shapes_cfg(root, shots=-1))
    base = build_dataset(shapes_cfg(root, shots=-1, subsample="base"))
    new = build_dataset(shapes_cfg(root, shots=-1, subsample="new"))
    assert full.classnames == sorted(full.classnames) and len(full.classnames) == 9
    assert base.classnames == full.classnames[:5] and new.classnames == full.classnames[5:]
    assert base.num_classes == 5 and new.num_classes == 4
    assert {d.label for d in new.test} == {0, 1, 2, 3}
    assert len(base.test) + len(new.test) == len(full.test)

"""Errors a user can act on: the missing folder, file or image is named, with the docs section to read."""
import json
import os
import re

import pytest
import yaml
from support.dataset_fixtures import (
    BUILDERS,
    SPLIT_READERS,
    YAML_FILES,
    build,
    write_json_fixture,
    write_text,
)
from support.fake_dassl import write_dassl_pickle

from datasets import DATASET_REGISTRY
from datasets.splits import verify_images_exist
from datasets.toolbox import make_datum

DOCS = "docs/DATASETS.md"
ALL_READERS = sorted(BUILDERS)


def doc_anchors():
    """GitHub-style anchors of the docs' headings."""
    with open(DOCS) as f:
        headings = [line.lstrip("#").strip() for line in f if line.startswith("#")]
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


def test_every_reader_has_a_config_file_with_only_its_name():
    for name, yaml_name in YAML_FILES.items():
        assert name in DATASET_REGISTRY.registered_names()
        with open(f"configs/datasets/{yaml_name}.yaml") as f:
            assert yaml.safe_load(f) == {"DATASET": {"NAME": name}}


@pytest.mark.parametrize("name", ALL_READERS)
def test_missing_dataset_folder_names_path_and_docs_section(tmp_path, name):
    with pytest.raises(FileNotFoundError) as error:
        build(tmp_path, name)
    message = str(error.value)
    anchor = message.split(f"{DOCS}#")[1].split()[0]
    assert anchor in doc_anchors(), f"{anchor} is not a heading of {DOCS}"
    assert str(tmp_path) in message and "expected the folder" in message


def test_missing_annotation_file_says_the_split_file_is_missing_too(tmp_path):
    expected = BUILDERS["OxfordPets"](str(tmp_path))
    os.remove(os.path.join(expected.dataset_dir, "annotations", "test.txt"))
    with pytest.raises(FileNotFoundError, match=r"annotations/test\.txt.*split_zhou_OxfordPets\.json.*#oxfordpets"):
        build(tmp_path, "OxfordPets", generate_split=True)


@pytest.mark.parametrize("name", sorted(SPLIT_READERS))
def test_image_listed_in_split_but_missing_is_named(tmp_path, name):
    expected, _ = write_json_fixture(str(tmp_path), name)
    gone = expected["val"][1][0]
    os.remove(gone)
    with pytest.raises(FileNotFoundError, match=re.escape(gone)):
        build(tmp_path, name)


def test_dataset_name_typo_suggests_the_closest_name(tmp_path):
    # (the built-in registry says 'Did you mean "OxfordPets"?', Dassl's 'do you mean [OxfordPets]?')
    with pytest.raises(ValueError, match=r'(Did|do) you mean \W?OxfordPets\W'):
        build(tmp_path, "OxfordPet")
    with pytest.raises(ValueError, match=r'(Did|do) you mean \W?DescribableTextures\W'):
        build(tmp_path, "DescribableTexture")


def test_too_small_class_for_a_generated_split_is_named(tmp_path):
    expected = BUILDERS["OxfordPets"](str(tmp_path))
    path = os.path.join(expected.dataset_dir, "annotations", "trainval.txt")
    with open(path) as f:
        lines = [line for line in f if not line.startswith("Abyssinian_") or line.startswith("Abyssinian_1 ")]
    with open(path, "w") as f:
        f.writelines(lines)
    with pytest.raises(ValueError, match=r'"abyssinian".*at least 3'):
        build(tmp_path, "OxfordPets", generate_split=True)


def test_malformed_annotation_line_names_file_and_line(tmp_path):
    expected = BUILDERS["OxfordPets"](str(tmp_path))
    path = os.path.join(expected.dataset_dir, "annotations", "test.txt")
    with open(path, "a") as f:
        f.write("Abyssinian_9 1\n")
    with pytest.raises(ValueError, match=r"test\.txt, line 7"):
        build(tmp_path, "OxfordPets", generate_split=True)


def test_unknown_fgvc_variant_names_variants_file(tmp_path):
    expected = BUILDERS["FGVCAircraft"](str(tmp_path))
    with open(os.path.join(expected.dataset_dir, "images_variant_val.txt"), "a") as f:
        f.write("0034399 Boeing 999\n")
    with pytest.raises(ValueError, match=r"'Boeing 999'.*variants\.txt"):
        build(tmp_path, "FGVCAircraft")


def test_imagenet_flat_val_folder_is_explained(tmp_path):
    expected = BUILDERS["ImageNet"](str(tmp_path))
    val = os.path.join(expected.dataset_dir, "images", "val")
    for wnid in os.listdir(val):
        for name in os.listdir(os.path.join(val, wnid)):
            os.rename(os.path.join(val, wnid, name), os.path.join(val, name))
        os.rmdir(os.path.join(val, wnid))
    with pytest.raises(FileNotFoundError, match="one folder per wnid"):
        build(tmp_path, "ImageNet")


def test_imagenet_train_and_val_must_share_wnids(tmp_path):
    expected = BUILDERS["ImageNet"](str(tmp_path))
    os.rename(os.path.join(expected.dataset_dir, "images", "val", "n01440764"),
              os.path.join(expected.dataset_dir, "images", "val", "n01491361"))
    with pytest.raises(ValueError, match=r"only in train: \['n01440764'\], only in val: \['n01491361'\]"):
        build(tmp_path, "ImageNet")


def test_unknown_wnid_folder_names_classnames_file(tmp_path):
    expected = BUILDERS["ImageNetSketch"](str(tmp_path))
    os.makedirs(os.path.join(expected.dataset_dir, "images", "n99999999"))
    with pytest.raises(ValueError, match=r"'n99999999' is not listed in .*imagenet-sketch/classnames\.txt"):
        build(tmp_path, "ImageNetSketch")


def test_imagenetv2_needs_every_label_folder_and_line(tmp_path):
    base = os.path.join(tmp_path, "imagenetv2")
    write_text(os.path.join(base, "classnames.txt"), [f"n{i:08d} c{i}" for i in range(10)])
    os.makedirs(os.path.join(base, "imagenetv2-matched-frequency-format-val", "0"))
    with pytest.raises(ValueError, match="lists 10 classes; ImageNetV2 needs all 1000"):
        build(tmp_path, "ImageNetV2")
    write_text(os.path.join(base, "classnames.txt"), [f"n{i:08d} c{i}" for i in range(1000)])
    with pytest.raises(FileNotFoundError, match=r"imagenetv2-matched-frequency-format-val/1 "):
        build(tmp_path, "ImageNetV2")


def test_split_file_without_its_keys_is_named(tmp_path):
    write_json_fixture(str(tmp_path), "DescribableTextures")
    path = os.path.join(tmp_path, "dtd", "split_zhou_DescribableTextures.json")
    with open(path) as f:
        split = json.load(f)
    del split["val"]
    with open(path, "w") as f:
        json.dump(split, f)
    with pytest.raises(ValueError, match=r"DescribableTextures\.json: the split file lacks the lists \['val'\]"):
        build(tmp_path, "DescribableTextures")


def test_image_check_lists_folders_instead_of_stating_files(tmp_path, monkeypatch):
    folders = [tmp_path / f"c{i}" for i in range(3)]
    items = []
    for folder in folders:
        folder.mkdir()
        for j in range(200):
            (folder / f"{j}.jpg").write_bytes(b"")
            items.append(make_datum(impath=str(folder / f"{j}.jpg")))
    calls = []
    real_listdir = os.listdir
    monkeypatch.setattr(os, "listdir", lambda path: calls.append(path) or real_listdir(path))

    def no_stat(*args, **kwargs):
        raise AssertionError("per-file stat")

    monkeypatch.setattr(os.path, "isfile", no_stat)
    monkeypatch.setattr(os.path, "exists", no_stat)
    verify_images_exist(items)
    assert sorted(calls) == sorted(str(f) for f in folders)


def test_fewshot_cache_listing_a_missing_image_names_it_and_the_cache(tmp_path):
    expected, _ = write_json_fixture(str(tmp_path), "UCF101")
    cache = os.path.join(tmp_path, "ucf101", "split_fewshot", "shot_1-seed_1.pkl")
    gone = os.path.join(tmp_path, "ucf101", "UCF-101-midframes", "deleted.jpg")
    write_dassl_pickle(cache, {"train": expected["train"][:2] + [(gone, 0, "x")], "val": expected["val"][:1]})
    with pytest.raises(FileNotFoundError, match=re.escape(gone) + ".*" + re.escape(cache)):
        build(tmp_path, "UCF101", shots=1, seed=1)

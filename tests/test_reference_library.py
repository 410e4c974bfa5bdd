"""``SPLE.PIC_LIB`` / ``TRAINER.DPC.NEGATIVE_POOL``: the reference code's image-library json is read besides ours,
relative paths under the dataset's image folder, and a malformed file is named with its entry."""
import json
import os

import pytest

from trainers.dpc.negative_pool import read_image_library

CLASSNAMES = ["face", "leopard", "dolphin"]


@pytest.fixture
def image_dir(tmp_path):
    """A dataset's image folder: <class>/<n>.jpg (two images of face and leopard, none of dolphin)."""
    folder = tmp_path / "caltech-101" / "101_ObjectCategories"
    for cname in ("face", "leopard"):
        (folder / cname).mkdir(parents=True)
        for n in (1, 2):
            (folder / cname / f"{n}.jpg").write_bytes(b"")
    return str(folder)


def library(tmp_path, content):
    path = tmp_path / "SPLE_database" / "SPLE_Caltech101.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(content))
    return str(path)


def reference_library(train):
    return {"train": [train], "val": [{"face": [0, ["face/2.jpg"]]}], "train_obj_list": list(train),
            "val_obj_list": ["face"]}


def test_the_reference_format_is_read_with_paths_under_the_image_folder(tmp_path, image_dir):
    path = library(tmp_path, reference_library({"face": [0, ["face/1.jpg", "face/2.jpg"]],
                                                "leopard": [1, ["leopard/2.jpg"]]}))
    items = read_image_library(path, CLASSNAMES, image_dir)
    assert [(item.impath, item.label) for item in items] == [
        (os.path.join(image_dir, "face/1.jpg"), 0), (os.path.join(image_dir, "face/2.jpg"), 0),
        (os.path.join(image_dir, "leopard/2.jpg"), 1)]


def test_classes_are_matched_by_name_not_by_the_librarys_label(tmp_path, image_dir):
    """The reference looks classes up by name; its labels may follow another class order."""
    path = library(tmp_path, reference_library({"leopard": [0, ["leopard/1.jpg"]], "tiger": [5, ["x.jpg"]]}))
    assert [(os.path.basename(i.impath), i.label) for i in read_image_library(path, CLASSNAMES, image_dir)] == \
        [("1.jpg", 1)]


def test_our_class_list_format_reads_relative_paths_under_the_image_folder_too(tmp_path, image_dir):
    path = library(tmp_path, {"leopard": ["leopard/1.jpg"]})
    assert [i.impath for i in read_image_library(path, CLASSNAMES, image_dir)] == \
        [os.path.join(image_dir, "leopard/1.jpg")]


def test_absolute_paths_are_kept(tmp_path, image_dir):
    absolute = os.path.join(image_dir, "face", "1.jpg")
    path = library(tmp_path, reference_library({"face": [0, [absolute]]}))
    assert [i.impath for i in read_image_library(path, CLASSNAMES, "/elsewhere")] == [absolute]


@pytest.mark.parametrize("train, message", [
    ({"face": ["face/1.jpg"]}, r'"train" maps "face" to \[\'face/1.jpg\'\]; expected \[label, \[image paths\]\]'),
    ({"face": [0, "face/1.jpg"]}, r'"train" maps "face" to .*expected \[label, \[image paths\]\]'),
    ({"face": [0, [1, 2]]}, r'"train" maps "face" to .*expected \[label, \[image paths\]\]'),
])
def test_a_malformed_reference_entry_is_named(tmp_path, image_dir, train, message):
    with pytest.raises(ValueError, match=message):
        read_image_library(library(tmp_path, reference_library(train)), CLASSNAMES, image_dir)


def test_a_missing_image_names_the_folder_it_was_looked_for_in(tmp_path, image_dir):
    path = library(tmp_path, reference_library({"face": [0, ["face/9.jpg"]]}))
    with pytest.raises(FileNotFoundError, match=r"face/9\.jpg \(listed in the image library .* relative paths are "
                                                r"read under .*101_ObjectCategories\)"):
        read_image_library(path, CLASSNAMES, image_dir)


def test_a_library_of_other_classes_says_so(tmp_path, image_dir):
    path = library(tmp_path, reference_library({"tiger": [0, ["tiger/1.jpg"]]}))
    with pytest.raises(ValueError, match="has no images of the current classes"):
        read_image_library(path, CLASSNAMES, image_dir)

"""Generated data trees for the dataset readers: tiny JPEGs plus metadata in the real formats (docs/DATASETS.md).

Each ``make_<reader>(root)`` writes the raw layout of one dataset under ``root`` and returns what the reader
should produce from it when it generates the split file: class names by label and images per label per split.
``write_json_fixture`` writes the other mode: a split file plus only the images it lists.
"""
import io
import json
import os
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

import trainers
from datasets.toolbox import build_dataset
from trainers.engine import get_cfg_default


def _jpeg_bytes():
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 90, 30)).save(buffer, format="JPEG")
    return buffer.getvalue()


JPEG = _jpeg_bytes()


def write_image(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(JPEG)
    return path


def write_text(path, lines, newline="\n"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", newline="") as f:
        f.write("".join(line + newline for line in lines))
    return path


@dataclass
class Expected:
    """What a reader yields from a fixture: names by label and, per split, how many images each label has."""

    name: str
    dataset_dir: str
    classnames: list
    counts: dict = field(default_factory=dict)  # split -> [images of label 0, label 1, ...]


def make_cfg(root, name, shots=-1, subsample="all", seed=1, generate_split=False):
    """``generate_split``: draw the benchmark's split here (``DATASET.GENERATE_SPLIT``), as a generated tree without
    the published split file needs."""
    cfg = trainers.extend_cfg(get_cfg_default())
    cfg.DATASET.GENERATE_SPLIT = generate_split
    cfg.DATASET.ROOT = str(root)
    cfg.DATASET.NAME = name
    cfg.DATASET.NUM_SHOTS = shots
    cfg.DATASET.SUBSAMPLE_CLASSES = subsample
    cfg.SEED = seed
    return cfg


def build(root, name, **kwargs):
    return build_dataset(make_cfg(root, name, **kwargs))


# --- generation-mode trees ----------------------------------------------------------------------------------
# Split-file datasets get 5 images per class: 80/20 gives 4/1, and 50/20/30 gives round(2.5)=2 (banker's
# rounding), round(1.0)=1 and 2.

def make_oxford_pets(root):
    base = os.path.join(root, "oxford_pets")
    breeds = [("Abyssinian", 1, 1), ("american_bulldog", 2, 2), ("american_pit_bull_terrier", 3, 2)]
    trainval, test = [], []
    for stem, class_id, species in breeds:
        for i in range(1, 8):
            write_image(os.path.join(base, "images", f"{stem}_{i}.jpg"))
            (trainval if i <= 5 else test).append(f"{stem}_{i} {class_id} {species} {class_id}")
    write_text(os.path.join(base, "annotations", "trainval.txt"), trainval)
    write_text(os.path.join(base, "annotations", "test.txt"), test)
    # list.txt has '#' header lines; the reader must not touch it
    write_text(os.path.join(base, "annotations", "list.txt"), ["#Image CLASS-ID SPECIES BREED ID"] + trainval)
    return Expected("OxfordPets", base, ["abyssinian", "american_bulldog", "american_pit_bull_terrier"],
                    {"train": [4] * 3, "val": [1] * 3, "test": [2] * 3})


def make_caltech101(root):
    base = os.path.join(root, "caltech-101")
    for folder in ("Faces", "accordion", "airplanes", "BACKGROUND_Google", "Faces_easy"):
        for i in range(1, 6):
            write_image(os.path.join(base, "101_ObjectCategories", folder, f"image_{i:04d}.jpg"))
    return Expected("Caltech101", base, ["face", "accordion", "airplane"],
                    {"train": [2] * 3, "val": [1] * 3, "test": [2] * 3})


def _savemat_structs(path, name, records):
    """A 1xN MATLAB struct array like the devkit's ``annotations`` (bbox fields included, as in the real files)."""
    from scipy.io import savemat

    dtype = [("bbox_x1", "O"), ("bbox_y1", "O"), ("bbox_x2", "O"), ("bbox_y2", "O"), ("class", "O"), ("fname", "O")]
    array = np.zeros((1, len(records)), dtype=dtype)
    for i, (class_id, fname) in enumerate(records):
        box = [np.array([[v]], dtype=np.uint16) for v in (1, 1, 7, 7)]
        array[0, i] = (*box, np.array([[class_id]], dtype=np.uint8), fname)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    savemat(path, {name: array})


def make_stanford_cars(root):
    from scipy.io import savemat

    base = os.path.join(root, "stanford_cars")
    models = ["AM General Hummer SUV 2000", "Acura RL Sedan 2012", "Acura TL Sedan 2012"]
    os.makedirs(os.path.join(base, "devkit"))
    savemat(os.path.join(base, "devkit", "cars_meta.mat"), {"class_names": np.array([models], dtype=object)})
    train, test = [], []
    for class_id in (1, 2, 3):
        for _ in range(5):
            train.append((class_id, f"{len(train) + 1:05d}.jpg"))
        for _ in range(2):
            test.append((class_id, f"{len(test) + 1:05d}.jpg"))
    for folder, records in (("cars_train", train), ("cars_test", test)):
        for _, fname in records:
            write_image(os.path.join(base, folder, fname))
    _savemat_structs(os.path.join(base, "devkit", "cars_train_annos.mat"), "annotations", train)
    _savemat_structs(os.path.join(base, "cars_test_annos_withlabels.mat"), "annotations", test)
    return Expected("StanfordCars", base,
                    ["2000 AM General Hummer SUV", "2012 Acura RL Sedan", "2012 Acura TL Sedan"],
                    {"train": [4] * 3, "val": [1] * 3, "test": [2] * 3})


def make_oxford_flowers(root):
    from scipy.io import savemat

    base = os.path.join(root, "oxford_flowers")
    labels = [2, 1, 1, 2, 3, 1, 2, 3, 3, 1, 2, 3, 1, 2, 3]  # class 2 appears first: groups follow appearance
    for i in range(len(labels)):
        write_image(os.path.join(base, "jpg", f"image_{i + 1:05d}.jpg"))
    savemat(os.path.join(base, "imagelabels.mat"), {"labels": np.array([labels], dtype=np.uint8)})
    with open(os.path.join(base, "cat_to_name.json"), "w") as f:
        json.dump({"1": "pink primrose", "2": "hard-leaved pocket orchid", "3": "canterbury bells"}, f)
    return Expected("OxfordFlowers", base,
                    ["pink primrose", "hard-leaved pocket orchid", "canterbury bells"],
                    {"train": [2] * 3, "val": [1] * 3, "test": [2] * 3})


def _class_folders(image_dir, folders, count=5, pattern="{folder}_{i}.jpg"):
    for folder in folders:
        for i in range(1, count + 1):
            write_image(os.path.join(image_dir, folder, pattern.format(folder=folder, i=i)))


def make_food101(root):
    base = os.path.join(root, "food-101")
    _class_folders(os.path.join(base, "images"), ["apple_pie", "baby_back_ribs", "baklava"], pattern="{i}00{i}.jpg")
    write_text(os.path.join(base, "meta", "classes.txt"), ["apple_pie", "baby_back_ribs", "baklava"])
    return Expected("Food101", base, ["apple_pie", "baby_back_ribs", "baklava"],
                    {"train": [2] * 3, "val": [1] * 3, "test": [2] * 3})


def make_dtd(root):
    base = os.path.join(root, "dtd")
    _class_folders(os.path.join(base, "images"), ["banded", "blotchy", "braided"])
    write_text(os.path.join(base, "labels", "train1.txt"), ["banded/banded_1.jpg"])
    return Expected("DescribableTextures", base, ["banded", "blotchy", "braided"],
                    {"train": [2] * 3, "val": [1] * 3, "test": [2] * 3})


def make_eurosat(root):
    base = os.path.join(root, "eurosat")
    _class_folders(os.path.join(base, "2750"), ["AnnualCrop", "Forest", "SeaLake"])
    return Expected("EuroSAT", base, ["Annual Crop Land", "Forest", "Sea or Lake"],
                    {"train": [2] * 3, "val": [1] * 3, "test": [2] * 3})


def make_fgvc_aircraft(root):
    base = os.path.join(root, "fgvc_aircraft")
    variants = ["707-320", "Cessna 172", "F-16A/B"]
    write_text(os.path.join(base, "variants.txt"), variants)
    sizes = {"train": 3, "val": 2, "test": 1}
    next_id = 34300
    for split, size in sizes.items():
        lines = []
        for variant in variants:
            for _ in range(size):
                image_id = f"{next_id:07d}"  # leading zeros belong to the file name
                next_id += 1
                write_image(os.path.join(base, "images", image_id + ".jpg"))
                lines.append(f"{image_id} {variant}")
        write_text(os.path.join(base, f"images_variant_{split}.txt"), lines)
    return Expected("FGVCAircraft", base, variants,
                    {split: [size] * 3 for split, size in sizes.items()})


def make_sun397(root):
    base = os.path.join(root, "sun397")
    keys = ["a/abbey", "a/apartment_building/outdoor", "b/bakery/shop"]
    write_text(os.path.join(base, "ClassName.txt"), ["/" + key for key in keys])
    train, test = [], []
    for key in keys:
        for i in range(7):
            rel = f"{key}/sun_{key.replace('/', '')}{i}.jpg"
            write_image(os.path.join(base, "SUN397", rel))
            (train if i < 5 else test).append("/" + rel)
    write_text(os.path.join(base, "Training_01.txt"), train)
    write_text(os.path.join(base, "Testing_01.txt"), test)
    return Expected("SUN397", base, ["abbey", "outdoor apartment_building", "shop bakery"],
                    {"train": [4] * 3, "val": [1] * 3, "test": [2] * 3})


def make_ucf101(root):
    base = os.path.join(root, "ucf101")
    # (action as listed, video-name spelling, frame folder): HandstandPushups videos are spelled HandStand...
    actions = [("ApplyEyeMakeup", "ApplyEyeMakeup", "Apply_Eye_Makeup"),
               ("HandstandPushups", "HandStandPushups", "Handstand_Pushups"),
               ("YoYo", "YoYo", "Yo_Yo")]
    lists = os.path.join(base, "ucfTrainTestlist")
    write_text(os.path.join(lists, "classInd.txt"), [f"{i} {a}" for i, (a, _, _) in enumerate(actions, 1)],
               newline="\r\n")
    train, test = [], []
    for class_id, (action, spelling, folder) in enumerate(actions, 1):
        for group in range(1, 8):
            video = f"v_{spelling}_g{group:02d}_c01"
            write_image(os.path.join(base, "UCF-101-midframes", folder, video + ".jpg"))
            if group <= 5:
                train.append(f"{action}/{video}.avi {class_id}")
            else:
                test.append(f"{action}/{video}.avi")
    write_text(os.path.join(lists, "trainlist01.txt"), train, newline="\r\n")
    write_text(os.path.join(lists, "testlist01.txt"), test, newline="\r\n")
    return Expected("UCF101", base, ["Apply_Eye_Makeup", "Handstand_Pushups", "Yo_Yo"],
                    {"train": [4] * 3, "val": [1] * 3, "test": [2] * 3})


IMAGENET_CLASSES = [("n01440764", "tench"), ("n01443537", "goldfish"), ("n01484850", "great white shark"),
                    ("n01491361", "tiger shark"), ("n01494475", "hammerhead shark")]


def write_imagenet_classnames(path, count=len(IMAGENET_CLASSES)):
    lines = [f"{wnid} {name}" for wnid, name in IMAGENET_CLASSES]
    lines += [f"n{90000000 + i:08d} class {i}" for i in range(len(lines), count)]
    return write_text(path, lines[:count])


def make_imagenet(root, train_per_class=3, val_per_class=2):
    base = os.path.join(root, "imagenet")
    write_imagenet_classnames(os.path.join(base, "classnames.txt"))  # 5 lines; the extra wnids are harmless
    for wnid, _ in IMAGENET_CLASSES[:3]:
        for split, count in (("train", train_per_class), ("val", val_per_class)):
            for i in range(count):
                write_image(os.path.join(base, "images", split, wnid, f"{wnid}_{i}.JPEG"))
    return Expected("ImageNet", base, ["tench", "goldfish", "great white shark"],
                    {"train": [train_per_class] * 3, "val": [val_per_class] * 3, "test": [val_per_class] * 3})


def _make_sorted_wnid_set(root, name, folder, image_folder, readme):
    base = os.path.join(root, folder)
    write_imagenet_classnames(os.path.join(base, "classnames.txt"))
    for wnid, _ in IMAGENET_CLASSES[1:4]:  # wnids #2..#4 of the file must get labels 0..2
        for i in range(2):
            write_image(os.path.join(base, image_folder, wnid, f"{i}.jpg"))
    if readme:
        write_text(os.path.join(base, image_folder, "README.txt"), ["not a class"])
    names = [name for _, name in IMAGENET_CLASSES[1:4]]
    return Expected(name, base, names, {"train": [2] * 3, "test": [2] * 3})


def make_imagenet_sketch(root):
    return _make_sorted_wnid_set(root, "ImageNetSketch", "imagenet-sketch", "images", False)


def make_imagenet_a(root):
    return _make_sorted_wnid_set(root, "ImageNetA", "imagenet-adversarial", "imagenet-a", True)


def make_imagenet_r(root):
    return _make_sorted_wnid_set(root, "ImageNetR", "imagenet-rendition", "imagenet-r", True)


def make_imagenetv2(root):
    """All 1000 label folders with one image each: the reader requires every one of them."""
    base = os.path.join(root, "imagenetv2")
    write_imagenet_classnames(os.path.join(base, "classnames.txt"), count=1000)
    image_dir = os.path.join(base, "imagenetv2-matched-frequency-format-val")
    for label in range(1000):
        write_image(os.path.join(image_dir, str(label), "0.jpeg"))
    names = [name for _, name in IMAGENET_CLASSES] + [f"class {i}" for i in range(5, 1000)]
    return Expected("ImageNetV2", base, names, {"train": [1] * 1000, "test": [1] * 1000})


# Readers with a split file, by registry name: (builder, dataset folder, split-path prefix under it).
SPLIT_READERS = {
    "OxfordPets": (make_oxford_pets, "oxford_pets", "images"),
    "Caltech101": (make_caltech101, "caltech-101", "101_ObjectCategories"),
    "StanfordCars": (make_stanford_cars, "stanford_cars", ""),
    "OxfordFlowers": (make_oxford_flowers, "oxford_flowers", "jpg"),
    "Food101": (make_food101, "food-101", "images"),
    "SUN397": (make_sun397, "sun397", "SUN397"),
    "DescribableTextures": (make_dtd, "dtd", "images"),
    "EuroSAT": (make_eurosat, "eurosat", "2750"),
    "UCF101": (make_ucf101, "ucf101", "UCF-101-midframes"),
}
BUILDERS = {
    **{name: entry[0] for name, entry in SPLIT_READERS.items()},
    "FGVCAircraft": make_fgvc_aircraft,
    "ImageNet": make_imagenet,
    "ImageNetV2": make_imagenetv2,
    "ImageNetSketch": make_imagenet_sketch,
    "ImageNetA": make_imagenet_a,
    "ImageNetR": make_imagenet_r,
}

YAML_FILES = {
    "ImageNet": "imagenet", "Caltech101": "caltech101", "OxfordPets": "oxford_pets", "StanfordCars": "stanford_cars",
    "OxfordFlowers": "oxford_flowers", "Food101": "food101", "FGVCAircraft": "fgvc_aircraft", "SUN397": "sun397",
    "DescribableTextures": "dtd", "EuroSAT": "eurosat", "UCF101": "ucf101", "ImageNetV2": "imagenetv2",
    "ImageNetSketch": "imagenet_sketch", "ImageNetA": "imagenet_a", "ImageNetR": "imagenet_r",
}

# Raw metadata a reader must not need once its split file exists (folder-listing datasets have none).
RAW_METADATA = {
    "OxfordPets": ["annotations"],
    "StanfordCars": ["devkit", "cars_test_annos_withlabels.mat"],
    "OxfordFlowers": ["imagelabels.mat", "cat_to_name.json"],
    "SUN397": ["ClassName.txt", "Training_01.txt", "Testing_01.txt"],
    "UCF101": ["ucfTrainTestlist"],
}


# --- split-file mode ------------------------------------------------------------------------------------------

def write_json_fixture(root, name, per_split=None, trailing_newline=True):
    """``split_zhou_<name>.json`` with made-up names (taken verbatim) and only the images it lists.

    Returns the split as written: ``{split: [(absolute path, label, classname), ...]}``.
    """
    _, folder, prefix = SPLIT_READERS[name]
    per_split = per_split or {"train": 4, "val": 2, "test": 3}
    dataset_dir = os.path.join(root, folder)
    prefix_dir = os.path.join(dataset_dir, prefix) if prefix else dataset_dir
    classnames = ["json class_a", "Json_Class B", "c3"]
    split, expected = {}, {}
    for key, size in per_split.items():
        entries = []
        # interleave labels so that first-appearance order differs from label order
        for i in range(size):
            for label in (2, 0, 1):
                entries.append([f"{key}/c{label}/img_{i}.jpg", label, classnames[label]])
        split[key] = entries
        expected[key] = [(os.path.join(prefix_dir, rel), label, cname) for rel, label, cname in entries]
        for path, _, _ in expected[key]:
            write_image(path)
    os.makedirs(dataset_dir, exist_ok=True)
    with open(os.path.join(dataset_dir, f"split_zhou_{name}.json"), "w") as f:
        json.dump(split, f, indent=4)
        if trailing_newline:
            f.write("\n")
    return expected, classnames


def triples(items):
    return [(item.impath, item.label, item.classname) for item in items]


def label_counts(items, num_labels):
    counts = [0] * num_labels
    for item in items:
        counts[item.label] += 1
    return counts

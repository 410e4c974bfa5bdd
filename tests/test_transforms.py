"""``build_transform`` (docs/DATASETS.md) and the loaders ``DataManager`` builds from it."""
import pytest
import torch
from PIL import Image
from support.runs import run_train, train_argv

import datasets  # noqa: F401  (registers the readers)
import trainers
from datasets.toolbox import HAVE_DASSL, DataManager, build_transform, check_transform_names
from trainers.engine import get_cfg_default

CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
NORM_LINE = f"+ normalization (mean={CLIP_MEAN}, std={CLIP_STD})"


def clip_cfg(size=224, transforms=("random_resized_crop", "random_flip", "normalize")):
    cfg = trainers.extend_cfg(get_cfg_default())
    cfg.INPUT.SIZE = (size, size)
    cfg.INPUT.INTERPOLATION = "bicubic"
    cfg.INPUT.PIXEL_MEAN = CLIP_MEAN
    cfg.INPUT.PIXEL_STD = CLIP_STD
    cfg.INPUT.TRANSFORMS = list(transforms)
    return cfg


def printed_lines(capsys):
    return capsys.readouterr().out.splitlines()


def test_clip_pipelines_print_dassls_lines(capsys):
    cfg = clip_cfg()
    build_transform(cfg, is_train=True)
    assert printed_lines(capsys) == [
        "Building transform_train",
        "+ random resized crop (size=(224, 224), scale=(0.08, 1.0))",
        "+ random flip",
        "+ to torch tensor of range [0, 1]",
        NORM_LINE,
    ]
    build_transform(cfg, is_train=False)
    assert printed_lines(capsys) == [
        "Building transform_test",
        "+ resize the smaller edge to 224",
        "+ 224x224 center crop",
        "+ to torch tensor of range [0, 1]",
        NORM_LINE,
    ]


@pytest.mark.parametrize("size", [224, 32])
@pytest.mark.parametrize("image_size", [(300, 200), (20, 50)])
def test_output_shapes(size, image_size):
    cfg = clip_cfg(size)
    image = Image.new("RGB", image_size, (10, 200, 30))
    for is_train in (True, False):
        out = build_transform(cfg, is_train=is_train)(image)
        assert out.shape == (3, size, size) and out.dtype == torch.float32


def test_test_pipeline_keeps_aspect_ratio_and_crops_the_centre():
    """A 96x32 image in red | green | blue thirds: the 32x32 centre crop is exactly the green third."""
    image = Image.new("RGB", (96, 32), (255, 0, 0))
    image.paste((0, 255, 0), (32, 0, 64, 32))
    image.paste((0, 0, 255), (64, 0, 96, 32))
    out = build_transform(clip_cfg(32, ["normalize"]), is_train=False)(image)
    mean, std = torch.tensor(CLIP_MEAN).view(3, 1, 1), torch.tensor(CLIP_STD).view(3, 1, 1)
    pixels = out * std + mean
    assert torch.allclose(pixels, torch.tensor([0.0, 1.0, 0.0]).view(3, 1, 1).expand(3, 32, 32), atol=1e-6)


def test_normalization_values():
    image = Image.new("RGB", (40, 40), (255, 0, 128))
    out = build_transform(clip_cfg(32), is_train=False)(image)
    expected = [(v / 255 - m) / s for v, m, s in zip((255, 0, 128), CLIP_MEAN, CLIP_STD)]
    for channel, value in enumerate(expected):
        assert torch.allclose(out[channel], torch.full((32, 32), value), atol=1e-6)


def test_without_normalize_values_stay_in_unit_range(capsys):
    cfg = clip_cfg(32, ["random_resized_crop", "random_flip"])
    image = Image.new("RGB", (50, 40), (255, 255, 255))
    for is_train in (True, False):
        out = build_transform(cfg, is_train=is_train)(image)
        assert torch.allclose(out, torch.ones_like(out))
    assert not any(line.startswith("+ normalization") for line in printed_lines(capsys))


def test_train_resize_when_no_crop_is_chosen(capsys):
    tfm = build_transform(clip_cfg(32, ["random_flip", "normalize"]), is_train=True)
    assert printed_lines(capsys)[:3] == ["Building transform_train", "+ resize to 32x32", "+ random flip"]
    assert tfm(Image.new("RGB", (70, 20))).shape == (3, 32, 32)  # Resize((32, 32)) ignores the aspect ratio


def test_train_pipeline_is_random_but_seeded():
    image = Image.new("RGB", (64, 64))
    image.paste((255, 255, 255), (0, 0, 20, 64))  # a white bar on the left
    tfm = build_transform(clip_cfg(32), is_train=True)

    def draw(seed):
        torch.manual_seed(seed)
        return torch.stack([tfm(image) for _ in range(4)])

    assert torch.equal(draw(0), draw(0))
    assert not torch.equal(draw(0), draw(1))


def test_unknown_transform_is_rejected_with_its_name():
    with pytest.raises(ValueError, match="unknown transform.*not_a_transform"):
        check_transform_names(["random_flip", "not_a_transform"])
    check_transform_names(["random_flip", "cutout"])  # a Dassl name passes; the built-in runtime says more below


def test_a_trainer_refuses_an_unknown_transform_before_reading_data(tmp_path, tiny_clip_path):
    (tmp_path / "no_data").mkdir()  # a data root with no dataset in it: reading data would fail otherwise
    with pytest.raises(ValueError, match="not_a_transform"):
        run_train(*train_argv("CoOp", str(tmp_path / "no_data"), tiny_clip_path, tmp_path / "out",
                              "INPUT.TRANSFORMS", "['random_flip', 'not_a_transform']"))


@pytest.mark.skipif(HAVE_DASSL, reason="Dassl implements every transform name")
def test_dassl_only_transform_names_say_so():
    with pytest.raises(ValueError, match='"cutout" needs Dassl'):
        build_transform(clip_cfg(32, ["cutout", "normalize"]), is_train=True)


def test_no_transform_gives_none():
    cfg = clip_cfg(32)
    cfg.INPUT.NO_TRANSFORM = True
    assert build_transform(cfg, is_train=True) is None and build_transform(cfg, is_train=False) is None


def test_data_manager_loaders(shapes_root, capsys):
    """6 classes x (5 train, 2 val, 3 test): train drops the last incomplete batch, val/test do not."""
    cfg = clip_cfg(32)
    cfg.DATASET.ROOT = shapes_root
    cfg.DATASET.NAME = "ImageFolder"
    cfg.DATASET.FOLDER = "shapes"
    cfg.DATALOADER.NUM_WORKERS = 0
    cfg.DATALOADER.TRAIN_X.BATCH_SIZE = 4
    cfg.DATALOADER.TEST.BATCH_SIZE = 7
    dm = DataManager(cfg)
    assert "# train_x  30" in capsys.readouterr().out
    assert dm.num_classes == 6 and len(dm.lab2cname) == 6
    assert len(dm.train_loader_x) == 30 // 4 and len(dm.val_loader) == 2 and len(dm.test_loader) == 3
    batch = next(iter(dm.test_loader))
    assert batch["img"].shape == (7, 3, 32, 32) and batch["label"].dtype == torch.int64
    assert set(batch) >= {"img", "label", "impath", "index", "domain"}
    assert sum(len(b["label"]) for b in dm.test_loader) == 18
    assert [len(b["label"]) for b in dm.train_loader_x] == [4] * 7

"""The demo world: its generator, the compact CLIP weights format, and the committed demo CLIP."""
import json
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import train
from datasets import demo_world
from datasets.toolbox import build_dataset
from trainers.prompted_clip import build_tiny_clip, load_clip, tokenize
from trainers.prompted_clip.loading import COMPACT_FORMAT, load_state_dict, save_compact_clip
from trainers.prompted_clip.templates import DEFAULT_TEMPLATE

DEMO_CLIP = "configs/demo/demo_clip.pt"
DEMO_DATASET_YAML = "configs/demo/demo_world.yaml"
SMALL = {"train": 3, "val": 1, "test": 2}
CLIP_MEAN = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)
CLIP_STD = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)


def read_tree(directory):
    """Relative path -> bytes of every file under ``directory``."""
    files = {}
    for parent, _, names in os.walk(directory):
        for name in names:
            path = os.path.join(parent, name)
            with open(path, "rb") as f:
                files[os.path.relpath(path, directory)] = f.read()
    return files


@pytest.fixture(scope="module")
def small_world(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    return str(root), demo_world.make_demo_world(str(root), counts=SMALL, seed=3)


# ---- the generator -----------------------------------------------------------------------------------------


def test_classes_are_words_sorted_by_folder():
    assert len(demo_world.FOLDERS) == 64 == len(set(demo_world.CLASSNAMES))
    assert demo_world.FOLDERS == sorted(demo_world.FOLDERS)
    assert demo_world.FOLDERS[0] == "blue_arrow" and demo_world.CLASSNAMES[0] == "blue arrow"
    base_colours = {name.split("_")[0] for name in demo_world.FOLDERS[:32]}
    assert base_colours == {"blue", "cyan", "green", "orange"}  # base/new share shapes, not colours


def test_render_is_deterministic_per_seed_and_class():
    first = demo_world.render_class(5, 12, seed=1)
    assert first.shape == (12, 3, 32, 32) and first.dtype == torch.uint8
    assert torch.equal(first, demo_world.render_class(5, 12, seed=1))
    assert not torch.equal(first, demo_world.render_class(5, 12, seed=2))


def test_downstream_images_have_the_warm_light():
    pre = demo_world.render_class(0, 64, distribution="pretrain").float().mean(dim=(0, 2, 3))
    down = demo_world.render_class(0, 64, distribution="downstream").float().mean(dim=(0, 2, 3))
    ratio = down / pre  # the same scenes (same generator); the clamp and noise blur the gains a little
    assert ratio[0] > 1.05 and 0.7 < ratio[1] < 0.9 and 0.7 < ratio[2] < 0.9


def test_shapes_are_drawn_inside_the_frame():
    images, scenes = demo_world.render(torch.arange(64), torch.Generator().manual_seed(0))
    assert (scenes["angle"].abs() <= demo_world.MAX_ANGLE).all()
    assert ((scenes["centre"].abs() + scenes["scale"][:, None]) <= 1 + 1e-6).all()
    pixels = images.float()
    border = torch.cat([pixels[:, :, 0], pixels[:, :, -1], pixels[:, :, :, 0], pixels[:, :, :, -1]], dim=2)
    background = border.median(dim=2).values[:, :, None, None]
    covered = ((pixels - background).abs().amax(dim=1) > 50).float().mean(dim=(1, 2))
    assert covered.min() > 0.02 and covered.max() < 0.8  # every object is visible and none fills the frame


def test_world_on_disk_layout_split_and_pixels(small_world):
    root, path = small_world
    assert path == os.path.join(root, "demo_world")
    assert sorted(n for n in os.listdir(path) if os.path.isdir(os.path.join(path, n))) == demo_world.FOLDERS
    with open(os.path.join(path, "split_demo_world.json")) as f:
        split = json.load(f)
    for part, count in SMALL.items():
        assert len(split[part]) == 64 * count
        assert [label for _, label, _ in split[part]] == [k for k in range(64) for _ in range(count)]
    rel, label, classname = split["test"][-1]
    assert (rel, label, classname) == ("yellow_triangle/0005.png", 63, "yellow_triangle")
    pixels = np.asarray(Image.open(os.path.join(path, rel)))
    expected = demo_world.render_class(63, 6, seed=3)[5].permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(pixels, expected)


def test_same_arguments_give_identical_files(small_world, tmp_path):
    _, first = small_world
    second = demo_world.make_demo_world(str(tmp_path), counts=SMALL, seed=3)
    assert read_tree(first) == read_tree(second)


def test_world_is_kept_when_up_to_date_replaced_otherwise(tmp_path):
    path = demo_world.make_demo_world(str(tmp_path), counts=SMALL)
    marker = os.path.join(path, "split_fewshot")
    os.makedirs(marker)
    demo_world.make_demo_world(str(tmp_path), counts=SMALL)
    assert os.path.isdir(marker)  # same arguments: nothing rewritten
    demo_world.make_demo_world(str(tmp_path), counts=dict(SMALL, test=1))
    assert not os.path.exists(marker)  # other arguments: a fresh world, stale few-shot caches gone
    assert len(os.listdir(os.path.join(path, "red_star"))) == 5
    assert not any(name.endswith(".partial") for name in os.listdir(tmp_path))


def test_refuses_to_overwrite_a_folder_that_is_not_a_demo_world(tmp_path):
    (tmp_path / "demo_world").mkdir()
    (tmp_path / "demo_world" / "mine.txt").write_text("keep")
    with pytest.raises(FileExistsError, match="not a demo world"):
        demo_world.make_demo_world(str(tmp_path), counts=SMALL)
    assert (tmp_path / "demo_world" / "mine.txt").read_text() == "keep"


def test_image_folder_reader_reads_the_premade_split(small_world):
    root, path = small_world
    args = train.build_parser().parse_args([
        "--root", root, "--seed", "1", "--dataset-config-file", DEMO_DATASET_YAML,
        "DATASET.NUM_SHOTS", "2", "DATASET.SUBSAMPLE_CLASSES", "new",
    ])
    dataset = build_dataset(train.setup_cfg(args))
    assert dataset.classnames == demo_world.FOLDERS[32:]
    assert len(dataset.train_x) == 32 * 2 and len(dataset.test) == 32 * SMALL["test"]
    assert all(item.impath.startswith(path) for item in dataset.test)


# ---- compact CLIP weights -----------------------------------------------------------------------------------


def test_compact_weights_round_trip(tmp_path):
    model = build_tiny_clip(seed=4, transformer_heads=1)  # what build_model infers from width 64
    prompts = [DEFAULT_TEMPLATE.format(name) for name in demo_world.CLASSNAMES[:6]]
    tokens = tokenize(prompts)
    path = save_compact_clip(model, str(tmp_path / "compact.pt"), tokens.unique().tolist())
    stored = torch.load(path, weights_only=True)
    assert stored["format"] == COMPACT_FORMAT and stored["token_rows"].dtype == torch.float16
    assert os.path.getsize(path) < 0.2 * sum(p.numel() * 4 for p in model.parameters())

    loaded = load_clip(path)  # the MODEL.BACKBONE.NAME path
    table = load_state_dict(path)["token_embedding.weight"]
    assert table.shape == model.token_embedding.weight.shape
    assert table[1].abs().sum() == 0  # a row no prompt uses: rebuilt as zeros
    images = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected, _ = model(images, tokens)
        actual, _ = loaded(images, tokens)
    torch.testing.assert_close(actual, expected, atol=0.01, rtol=0.01)  # fp16 weights


def test_unknown_compact_format_is_named(tmp_path):
    path = str(tmp_path / "future.pt")
    torch.save({"format": "clip-token-rows/v9", "state_dict": {}}, path)
    with pytest.raises(ValueError, match="unknown CLIP weights format 'clip-token-rows/v9'"):
        load_state_dict(path)


# ---- the committed demo CLIP ------------------------------------------------------------------------------


@torch.no_grad()
def zero_shot_accuracy(model, distribution, per_class, seed=99):
    text = F.normalize(model.encode_text(tokenize([DEFAULT_TEMPLATE.format(c) for c in demo_world.CLASSNAMES])), dim=-1)
    images = torch.cat([demo_world.render_class(k, per_class, seed, distribution) for k in range(64)])
    labels = torch.arange(64).repeat_interleave(per_class)
    features = F.normalize(model.encode_image((images.float() / 255 - CLIP_MEAN) / CLIP_STD), dim=-1)
    return 100.0 * ((features @ text.t()).argmax(dim=1) == labels).float().mean().item()


@pytest.mark.slow
def test_committed_demo_clip_is_small_and_zero_shot_works():
    assert os.path.getsize(DEMO_CLIP) <= 8 * 2 ** 20
    model = load_clip(DEMO_CLIP)
    assert model.visual.input_resolution == 32 and model.visual.conv1.kernel_size == (8, 8)
    assert zero_shot_accuracy(model, "pretrain", per_class=5) > 85  # measured 95.9; chance 1.6
    assert zero_shot_accuracy(model, "downstream", per_class=5) > 45  # measured 61.6

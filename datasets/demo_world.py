"""The demo world: 32x32 images of coloured shapes (8 colours x 8 shapes = 64 classes such as "red star").

    python -m datasets.demo_world --root DATA     # writes DATA/demo_world/<colour>_<shape>/*.png + split json

Two distributions share the renderer: the *pretraining* one (what the demo's tiny CLIP was trained on, see
``tools/demo/pretrain_clip.py``) and the *downstream* one written to disk, under a warm light. The shift
matters: on images of its own pretraining distribution CLIP has nothing left for prompt tuning to fit, so
the base-new trade-off (CoOp: base up, new down) only appears downstream.

Everything is drawn from seeded ``torch.Generator`` objects, one per class, so the same arguments give
byte-identical files.
"""
import argparse
import json
import math
import os
import shutil

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

COLOURS = {  # RGB in [0, 1]
    "red": (0.86, 0.12, 0.12), "orange": (0.95, 0.55, 0.10), "yellow": (0.95, 0.88, 0.15),
    "green": (0.15, 0.70, 0.20), "cyan": (0.10, 0.80, 0.85), "blue": (0.15, 0.30, 0.90),
    "purple": (0.55, 0.20, 0.75), "pink": (0.95, 0.50, 0.70),
}
# Every shape is mirror-symmetric, so horizontal flips stay inside the world.
SHAPES = ("circle", "square", "triangle", "star", "cross", "heart", "ring", "arrow")
# Class order = sorted folder names, so the protocol's base classes are the first half of this list.
FOLDERS = sorted(f"{colour}_{shape}" for colour in COLOURS for shape in SHAPES)
CLASSNAMES = [folder.replace("_", " ") for folder in FOLDERS]

# Warm (reddish) lighting, chosen by measurement with this world's colours: CoOp (16 shots, 25-200 epochs,
# 3 seeds) then gains on base and loses on new classes against zero-shot. Cool or magenta lights did not
# show it reliably: CoOp's fix for the light carried over to the new colours, so new rose as well.
DOWNSTREAM_GAINS = (1.2, 0.8, 0.8)
DISTRIBUTIONS = {"pretrain": None, "downstream": DOWNSTREAM_GAINS}
IMAGE_SIZE = 32
SUPERSAMPLE = 2  # drawn at 2x and average-pooled: anti-aliased edges
MAX_ANGLE = 15.0  # degrees; full rotations are too hard for a model pretrained in minutes
SCALE_RANGE = (0.35, 0.75)  # object radius as a fraction of half the image
SHADE_RANGE = (0.0, 0.6)  # background grey level
BACKGROUND_TINT = 0.04  # per-channel jitter of the background
COLOUR_JITTER = 0.04  # per-channel jitter of the object colour
NOISE_STD = 0.06
DEFAULT_COUNTS = {"train": 32, "val": 8, "test": 50}
MANIFEST = "demo_world.json"


def _polygon(points):
    return torch.tensor(points, dtype=torch.float32)


def _star(points=5, outer=1.0, inner=0.42):
    angles = [math.pi / 2 + i * math.pi / points for i in range(2 * points)]
    radii = [outer if i % 2 == 0 else inner for i in range(2 * points)]
    return _polygon([(r * math.cos(a), r * math.sin(a)) for r, a in zip(radii, angles)])


# Shapes live in canonical coordinates: u to the right, v upwards, inside the unit disc.
POLYGONS = {
    "triangle": _polygon([(0.0, 0.92), (-0.85, -0.62), (0.85, -0.62)]),
    "star": _star(),
    "arrow": _polygon([(0.0, 0.95), (0.72, 0.12), (0.26, 0.12), (0.26, -0.9), (-0.26, -0.9), (-0.26, 0.12),
                       (-0.72, 0.12)]),
}


def _inside_polygon(u, v, vertices):
    """Even-odd rule, vectorised over pixels: count the edges a ray to the right crosses."""
    inside = torch.zeros_like(u, dtype=torch.bool)
    for (x0, y0), (x1, y1) in zip(vertices.tolist(), vertices.roll(-1, 0).tolist()):
        if y0 == y1:
            continue
        crosses = (v >= min(y0, y1)) & (v < max(y0, y1))
        x_at_v = x0 + (v - y0) * (x1 - x0) / (y1 - y0)
        inside ^= crosses & (u < x_at_v)
    return inside


def shape_mask(shape, u, v):
    """Boolean mask of ``shape`` at canonical coordinates ``u, v`` (any shape)."""
    r2 = u * u + v * v
    if shape == "circle":
        return r2 <= 0.85 ** 2
    if shape == "square":
        return (u.abs() <= 0.68) & (v.abs() <= 0.68)
    if shape == "cross":
        return ((u.abs() <= 0.27) & (v.abs() <= 0.88)) | ((v.abs() <= 0.27) & (u.abs() <= 0.88))
    if shape == "ring":
        return (r2 <= 0.9 ** 2) & (r2 >= 0.5 ** 2)
    if shape == "heart":  # the curve (x^2 + y^2 - 1)^3 = x^2 y^3, scaled into the unit disc
        x, y = u / 0.78, (v + 0.1) / 0.78
        return (x * x + y * y - 1) ** 3 - x * x * y ** 3 <= 0
    if shape in POLYGONS:
        return _inside_polygon(u, v, POLYGONS[shape])
    raise ValueError(f"Unknown shape {shape!r}; choose from {SHAPES}")


def class_parts(labels):
    """Colour and shape indices (into ``COLOURS`` order and ``SHAPES``) of class labels."""
    colour_names = list(COLOURS)
    parts = [FOLDERS[i].split("_") for i in labels.tolist()]
    colours = torch.tensor([colour_names.index(c) for c, _ in parts], dtype=torch.long)
    shapes = torch.tensor([SHAPES.index(s) for _, s in parts], dtype=torch.long)
    return colours, shapes


def sample_scenes(n, generator):
    """Random layout of ``n`` images: scale, centre, angle, background and colour jitter."""
    def uniform(*shape, low=0.0, high=1.0):
        return low + (high - low) * torch.rand(*shape, generator=generator)

    scale = uniform(n, low=SCALE_RANGE[0], high=SCALE_RANGE[1])
    centre = uniform(n, 2, low=-1.0, high=1.0) * (1 - scale).unsqueeze(1)  # the object stays in the frame
    return {
        "scale": scale,
        "centre": centre,  # (x, y) with y pointing down, in [-1, 1]
        "angle": uniform(n, low=-MAX_ANGLE, high=MAX_ANGLE),
        "shade": uniform(n, low=SHADE_RANGE[0], high=SHADE_RANGE[1]),
        "background_tint": uniform(n, 3, low=-BACKGROUND_TINT, high=BACKGROUND_TINT),
        "colour_jitter": uniform(n, 3, low=-COLOUR_JITTER, high=COLOUR_JITTER),
    }


def render(labels, generator, gains=None):
    """uint8 images (N, 3, 32, 32) of the classes ``labels`` and the scene parameters they were drawn with.

    ``gains`` multiplies the RGB channels (the lighting of the downstream distribution) before the noise.
    """
    labels = torch.as_tensor(labels, dtype=torch.long)
    n, hi = len(labels), IMAGE_SIZE * SUPERSAMPLE
    scenes = sample_scenes(n, generator)
    colours, shapes = class_parts(labels)

    # Pixel centres in [-1, 1], then per image: undo the translation, rotation and scale.
    axis = (torch.arange(hi, dtype=torch.float32) + 0.5) / hi * 2 - 1
    y, x = torch.meshgrid(axis, axis, indexing="ij")
    dx = x - scenes["centre"][:, 0, None, None]
    dy = -(y - scenes["centre"][:, 1, None, None])  # v points up
    theta = torch.deg2rad(scenes["angle"])[:, None, None]
    scale = scenes["scale"][:, None, None]
    u = (dx * torch.cos(theta) + dy * torch.sin(theta)) / scale
    v = (-dx * torch.sin(theta) + dy * torch.cos(theta)) / scale

    mask = torch.zeros(n, hi, hi)
    for index, shape in enumerate(SHAPES):
        rows = (shapes == index).nonzero().flatten()
        if len(rows):
            mask[rows] = shape_mask(shape, u[rows], v[rows]).float()
    mask = F.avg_pool2d(mask.unsqueeze(1), SUPERSAMPLE)  # (N, 1, 32, 32) coverage

    palette = torch.tensor(list(COLOURS.values()))
    colour = (palette[colours] + scenes["colour_jitter"])[:, :, None, None]
    background = (scenes["shade"].unsqueeze(1) + scenes["background_tint"])[:, :, None, None]
    images = mask * colour + (1 - mask) * background
    if gains is not None:
        images = images * torch.tensor(gains, dtype=torch.float32)[None, :, None, None]
    images = images + NOISE_STD * torch.randn(images.shape, generator=generator)
    images = (images.clamp(0, 1) * 255).round().to(torch.uint8)
    return images, scenes


def class_generator(seed, label):
    """One generator per (seed, class): a class's images do not depend on which other classes are drawn."""
    return torch.Generator().manual_seed(seed * 1_000_003 + label)


def render_class(label, count, seed=0, distribution="downstream"):
    """``count`` uint8 images of class ``label``, the same ones ``make_demo_world`` writes (in file order)."""
    return render(torch.full((count,), label), class_generator(seed, label), DISTRIBUTIONS[distribution])[0]


def render_settings(distribution):
    """What the pixels depend on besides the seed: kept in the manifest, so a changed renderer rewrites the world."""
    return {"classes": FOLDERS, "colours": COLOURS, "gains": DISTRIBUTIONS[distribution], "size": IMAGE_SIZE,
            "supersample": SUPERSAMPLE, "max_angle": MAX_ANGLE, "scale_range": SCALE_RANGE,
            "shade_range": SHADE_RANGE, "background_tint": BACKGROUND_TINT, "colour_jitter": COLOUR_JITTER,
            "noise_std": NOISE_STD}


def make_demo_world(root, folder="demo_world", counts=None, seed=0, distribution="downstream", force=False):
    """Write ``root/folder/<class>/<NNNN>.png`` and ``split_<folder>.json`` (the ImageFolder layout).

    Per class the first ``counts["train"]`` images are the train split, then val, then test. An existing world
    written with the same arguments is kept (a manifest records them); one written with other arguments is
    replaced. A folder that is not a demo world is never touched.
    """
    counts = dict(DEFAULT_COUNTS, **(counts or {}))
    if min(counts.values()) < 1:
        raise ValueError(f"Every split needs at least one image per class, got {counts}")
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"distribution must be one of {list(DISTRIBUTIONS)}, got {distribution!r}")
    settings = {"seed": seed, "distribution": distribution, "counts": counts, **render_settings(distribution)}
    settings = json.loads(json.dumps(settings))  # tuples as lists, as they come back from the manifest
    target = os.path.join(root, folder)
    manifest = os.path.join(target, MANIFEST)
    if os.path.exists(target):
        if not os.path.isfile(manifest):
            raise FileExistsError(f"{target} exists and is not a demo world (no {MANIFEST}); choose another folder")
        with open(manifest) as f:
            if json.load(f) == settings and not force:
                print(f"{target} is up to date")
                return target

    staging = os.path.join(root, f".{folder}.partial")  # renamed into place when complete
    shutil.rmtree(staging, ignore_errors=True)
    split = {"train": [], "val": [], "test": []}
    total = sum(counts.values())
    for label, name in enumerate(FOLDERS):
        os.makedirs(os.path.join(staging, name))
        images = render_class(label, total, seed, distribution).permute(0, 2, 3, 1).numpy()
        start = 0
        for part in ("train", "val", "test"):
            for i in range(start, start + counts[part]):
                rel = f"{name}/{i:04d}.png"
                Image.fromarray(np.ascontiguousarray(images[i])).save(os.path.join(staging, rel))
                split[part].append([rel, label, name])  # class name as the ImageFolder reader gives it
            start += counts[part]
    with open(os.path.join(staging, f"split_{folder}.json"), "w") as f:
        json.dump(split, f, indent=1)
    with open(os.path.join(staging, MANIFEST), "w") as f:
        json.dump(settings, f, indent=1)
    if os.path.exists(target):
        shutil.rmtree(target)  # an older demo world (its few-shot cache included)
    os.replace(staging, target)
    print(f"Wrote {target}: {len(FOLDERS)} classes, {counts} images per class")
    return target


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", required=True, help="data root (DATASET.ROOT)")
    parser.add_argument("--folder", default="demo_world", help="folder under the root (DATASET.FOLDER)")
    parser.add_argument("--train", type=int, default=DEFAULT_COUNTS["train"], help="train images per class")
    parser.add_argument("--val", type=int, default=DEFAULT_COUNTS["val"], help="val images per class")
    parser.add_argument("--test", type=int, default=DEFAULT_COUNTS["test"], help="test images per class")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--distribution", default="downstream", choices=sorted(DISTRIBUTIONS))
    parser.add_argument("--force", action="store_true", help="rewrite even when up to date")
    args = parser.parse_args(argv)
    make_demo_world(args.root, args.folder, {"train": args.train, "val": args.val, "test": args.test},
                    args.seed, args.distribution, args.force)


if __name__ == "__main__":
    main()

"""A small generated dataset of coloured shapes in the ImageFolder layout, for tests and first runs.

    python -m datasets.shapes --root DATA        # writes DATA/shapes/<colour>_<shape>/*.png

Class names are words ("red circle"), so zero-shot CLIP prompts read naturally.
"""
import argparse
import os
import random

from PIL import Image, ImageDraw

COLOURS = {"red": (220, 40, 40), "green": (40, 180, 60), "blue": (50, 80, 220), "yellow": (230, 210, 40)}
SHAPES = ("circle", "square", "triangle")


def draw_shape(shape, colour, size, rng):
    background = tuple(rng.randint(0, 90) for _ in range(3))
    img = Image.new("RGB", (size, size), background)
    draw = ImageDraw.Draw(img)
    extent = rng.randint(size // 3, size - 4)
    x0, y0 = rng.randint(0, size - extent), rng.randint(0, size - extent)
    box = (x0, y0, x0 + extent, y0 + extent)
    if shape == "circle":
        draw.ellipse(box, fill=colour)
    elif shape == "square":
        draw.rectangle(box, fill=colour)
    elif shape == "triangle":
        draw.polygon([(x0, y0 + extent), (x0 + extent, y0 + extent), (x0 + extent // 2, y0)], fill=colour)
    else:
        raise ValueError(f"Unknown shape {shape!r}; choose from {SHAPES}")
    return img


def make_shapes_dataset(root, folder="shapes", colours=("red", "green", "blue"), shapes=("circle", "square"),
                        images_per_class=10, size=32, seed=0):
    """Write ``root/folder/<colour>_<shape>/<i>.png``; the same arguments always give the same files."""
    rng = random.Random(seed)
    dataset_dir = os.path.join(root, folder)
    for colour in colours:
        for shape in shapes:
            class_dir = os.path.join(dataset_dir, f"{colour}_{shape}")
            os.makedirs(class_dir, exist_ok=True)
            for i in range(images_per_class):
                draw_shape(shape, COLOURS[colour], size, rng).save(os.path.join(class_dir, f"{i:04d}.png"))
    return dataset_dir


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", required=True, help="data root (DATASET.ROOT)")
    parser.add_argument("--folder", default="shapes")
    parser.add_argument("--colours", nargs="+", default=["red", "green", "blue"], choices=sorted(COLOURS))
    parser.add_argument("--shapes", nargs="+", default=["circle", "square"], choices=SHAPES)
    parser.add_argument("--images-per-class", type=int, default=10)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    path = make_shapes_dataset(args.root, args.folder, args.colours, args.shapes, args.images_per_class,
                               args.size, args.seed)
    print(f"Wrote {path}")


if __name__ == "__main__":
    main()

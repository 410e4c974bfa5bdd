"""FLOPs of CLIP's two towers per item, forward only, counted with ``torch.utils.flop_counter.FlopCounterMode``:
one image through the image tower, one 77-token prompt through the text tower. The pipeline's cost estimate
(``tools/pipeline/cost.py``) holds the numbers this prints, for ViT-B/16 and ViT-L/14.

    python -m tools.bench.tower_flops            # both shapes; counted on the meta device (shapes only: instant)

The model is built on PyTorch's meta device, so nothing is allocated or computed: the counter sees every matrix
product and attention with its shapes, which is all a FLOP count needs (a product of (m, k) and (k, n) counts
2·m·k·n; element-wise operations are not counted, as the counter does not count them).
"""
import argparse

import torch
from torch.utils.flop_counter import FlopCounterMode

from tools.bench.clip_shapes import VIT_B16, VIT_L14
from tools.bench.memory import random_clip

SHAPES = {"ViT-B/16": VIT_B16, "ViT-L/14": VIT_L14}


def tower_flops(shape):
    """(image-tower FLOPs per image, text-tower FLOPs per prompt), forward, for a CLIP of ``shape``."""
    model = random_clip(shape, fp16=False)  # on the meta device
    with torch.device("meta"):
        images = torch.empty(1, 3, shape["image_resolution"], shape["image_resolution"])
        tokens = torch.zeros(1, shape["context_length"], dtype=torch.long)
    counts = []
    for encode, item in ((model.encode_image, images), (model.encode_text, tokens)):
        with FlopCounterMode(display=False) as counter:
            encode(item)
        counts.append(counter.get_total_flops())
    return tuple(counts)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.parse_args(argv)
    for name, shape in SHAPES.items():
        image, text = tower_flops(shape)
        print(f"{name}: image tower {image / 1e9:.2f} GFLOPs per image, text tower {text / 1e9:.2f} GFLOPs per "
              f"prompt (forward)")


if __name__ == "__main__":
    main()

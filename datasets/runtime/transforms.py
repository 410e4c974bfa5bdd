"""``build_transform``: Dassl's train/test image pipelines for the transform names CLIP configs use."""
from torchvision.transforms import (
    CenterCrop,
    Compose,
    InterpolationMode,
    Normalize,
    RandomCrop,
    RandomHorizontalFlip,
    RandomResizedCrop,
    Resize,
    ToTensor,
)

INTERPOLATION_MODES = {
    "bilinear": InterpolationMode.BILINEAR,
    "bicubic": InterpolationMode.BICUBIC,
    "nearest": InterpolationMode.NEAREST,
}

# Every name Dassl accepts; the built-in runtime implements the ones CLIP prompt tuning uses.
DASSL_CHOICES = (
    "random_flip", "random_resized_crop", "normalize", "instance_norm", "random_crop",
    "random_translation", "center_crop", "cutout", "imagenet_policy", "cifar10_policy", "svhn_policy",
    "randaugment", "randaugment_fixmatch", "randaugment2", "gaussian_noise", "colorjitter",
    "randomgrayscale", "gaussian_blur",
)
SUPPORTED = ("random_flip", "random_resized_crop", "normalize", "random_crop", "center_crop")


def build_transform(cfg, is_train=True, choices=None):
    if cfg.INPUT.NO_TRANSFORM:
        print("Note: no transform is applied!")
        return None
    choices = list(cfg.INPUT.TRANSFORMS if choices is None else choices)
    for name in choices:
        if name not in DASSL_CHOICES:
            raise ValueError(f'INPUT.TRANSFORMS: unknown transform "{name}"; choices are {DASSL_CHOICES}')
        if name not in SUPPORTED:
            raise ValueError(
                f'INPUT.TRANSFORMS: "{name}" needs Dassl; the built-in runtime supports {SUPPORTED}'
            )
    if cfg.INPUT.INTERPOLATION not in INTERPOLATION_MODES:
        raise ValueError(f"INPUT.INTERPOLATION must be one of {list(INTERPOLATION_MODES)}")
    normalize = Normalize(mean=cfg.INPUT.PIXEL_MEAN, std=cfg.INPUT.PIXEL_STD)
    if is_train:
        return _build_train(cfg, choices, normalize)
    return _build_test(cfg, choices, normalize)


def _build_train(cfg, choices, normalize):
    print("Building transform_train")
    interp = INTERPOLATION_MODES[cfg.INPUT.INTERPOLATION]
    size = tuple(cfg.INPUT.SIZE)
    steps = []
    if "random_crop" not in choices and "random_resized_crop" not in choices:
        print(f"+ resize to {size[0]}x{size[1]}")
        steps.append(Resize(size, interpolation=interp))
    if "random_crop" in choices:
        print(f"+ random crop (padding = {cfg.INPUT.CROP_PADDING})")
        steps.append(RandomCrop(size, padding=cfg.INPUT.CROP_PADDING))
    if "random_resized_crop" in choices:
        scale = tuple(cfg.INPUT.RRCROP_SCALE)
        print(f"+ random resized crop (size={size}, scale={scale})")
        steps.append(RandomResizedCrop(size, scale=scale, interpolation=interp))
    if "random_flip" in choices:
        print("+ random flip")
        steps.append(RandomHorizontalFlip())
    print("+ to torch tensor of range [0, 1]")
    steps.append(ToTensor())
    if "normalize" in choices:
        print(f"+ normalization (mean={list(cfg.INPUT.PIXEL_MEAN)}, std={list(cfg.INPUT.PIXEL_STD)})")
        steps.append(normalize)
    return Compose(steps)


def _build_test(cfg, choices, normalize):
    print("Building transform_test")
    interp = INTERPOLATION_MODES[cfg.INPUT.INTERPOLATION]
    size = tuple(cfg.INPUT.SIZE)
    print(f"+ resize the smaller edge to {max(size)}")
    print(f"+ {size[0]}x{size[1]} center crop")
    print("+ to torch tensor of range [0, 1]")
    steps = [Resize(max(size), interpolation=interp), CenterCrop(size), ToTensor()]
    if "normalize" in choices:
        print(f"+ normalization (mean={list(cfg.INPUT.PIXEL_MEAN)}, std={list(cfg.INPUT.PIXEL_STD)})")
        steps.append(normalize)
    return Compose(steps)

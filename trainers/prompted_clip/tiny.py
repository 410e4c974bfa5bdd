"""Tiny randomly initialised CLIPs for tests and examples (the stock ``clip.model.CLIP``, nothing forked)."""
import clip
import torch


def build_tiny_clip(seed=0, embed_dim=32, image_resolution=32, vision_layers=2, vision_width=64,
                    vision_patch_size=8, context_length=77, vocab_size=49408, transformer_width=64,
                    transformer_heads=4, transformer_layers=2):
    """A ViT CLIP small enough for CPU tests; its init is reproducible from ``seed``."""
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = clip.model.CLIP(embed_dim, image_resolution, vision_layers, vision_width, vision_patch_size,
                                context_length, vocab_size, transformer_width, transformer_heads,
                                transformer_layers)
    finally:
        torch.random.set_rng_state(generator_state)  # building a test model must not disturb the caller's RNG
    return model.float().eval()


def save_tiny_clip(path, **kwargs):
    """Write a plain state dict that ``MODEL.BACKBONE.NAME <path>`` loads."""
    torch.save(build_tiny_clip(**kwargs).state_dict(), path)
    return path

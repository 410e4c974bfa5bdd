"""CLIP weights and prompted encoders over the stock ``clip`` modules."""
from trainers.prompted_clip.encoders import PromptedImageEncoder, PromptedTextEncoder, prompt_copies
from trainers.prompted_clip.loading import input_resolution, load_clip, resolve_weights_file
from trainers.prompted_clip.prompts import (
    ClassTokens,
    class_prompt_texts,
    embed_tokens,
    eot_indices,
    init_context,
    name_lengths,
    tokenize,
)
from trainers.prompted_clip.tiny import build_tiny_clip, save_tiny_clip

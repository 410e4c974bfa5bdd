"""CLIP weights and prompted encoders over the stock ``clip`` modules."""
from .encoders import PromptedImageEncoder, PromptedTextEncoder, prompt_copies
from .loading import input_resolution, load_clip, resolve_weights_file
from .prompts import ClassTokens, class_prompt_texts, embed_tokens, eot_indices, init_context, name_lengths, tokenize
from .tiny import build_tiny_clip, save_tiny_clip

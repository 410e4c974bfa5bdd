"""IVLP, independent vision-language prompting (HOSTS.md §6): deep text prompts and deep vision prompts,
learned independently, on the stock CLIP towers.

Registered (and checkpointed) under the reference's name ``VLPromptLearner``, but the module saved is the prompt
learner alone. Our keys are ``ctx``, ``deep_text.k``, ``vision_ctx`` and ``deep_vision.k`` (k = layer - 1);
``from_reference`` maps the reference's whole-model keys (§11) onto them.
"""
import re

from .config import config_extension, new_node
from .engine import TRAINER_REGISTRY
from .host import freeze_all_but
from .host_trainer import PromptHostTrainer
from .vl_prompts import VLPromptedCLIP, VLPromptLearner


@config_extension
def add_ivlp_config(cfg):
    cfg.TRAINER.IVLP = new_node(
        N_CTX_VISION=2, N_CTX_TEXT=2, CTX_INIT="a photo of a", PREC="fp16",
        PROMPT_DEPTH_VISION=9, PROMPT_DEPTH_TEXT=9,
        ROUND_PROMPTS_FP16=False,  # ours: round inserted prompts through fp16 as the reference does under fp32/amp
    )


_REFERENCE_PREFIXES = ("prompt_learner.", "image_encoder.", "text_encoder.")
_DEEP_TEXT = re.compile(r"text_encoder\.transformer\.resblocks\.(\d+)\.VPT_shallow")
_DEEP_VISION = re.compile(r"image_encoder\.transformer\.resblocks\.(\d+)\.VPT_shallow")


def independent_prompts_from_reference(state_dict):
    """The prompt tensors of a reference IVLP/PromptSRC checkpoint (whole CustomCLIP) under our names;
    frozen CLIP weights, token buffers and PromptSRC's ``ZS_image_encoder`` are left out. Other layouts pass."""
    if not any(key.startswith(_REFERENCE_PREFIXES) for key in state_dict):
        return state_dict
    ours = {}
    for key, value in state_dict.items():
        deep_text, deep_vision = _DEEP_TEXT.fullmatch(key), _DEEP_VISION.fullmatch(key)
        if key == "prompt_learner.ctx":
            ours["ctx"] = value
        elif key == "image_encoder.VPT":
            ours["vision_ctx"] = value
        elif deep_text:
            ours[f"deep_text.{int(deep_text.group(1)) - 1}"] = value
        elif deep_vision:
            ours[f"deep_vision.{int(deep_vision.group(1)) - 1}"] = value
    print(f"Reference checkpoint layout: kept {len(ours)} prompt tensors of {len(state_dict)} entries")
    return ours


def build_independent_prompts(node, classnames, clip_model, method):
    return VLPromptLearner(clip_model, classnames, node.N_CTX_TEXT, node.N_CTX_VISION, node.PROMPT_DEPTH_TEXT,
                           node.PROMPT_DEPTH_VISION, node.CTX_INIT, method=method)


@TRAINER_REGISTRY.register()
class IVLP(PromptHostTrainer):
    config_node = "IVLP"
    registered_name = "VLPromptLearner"

    @classmethod
    def build_host_model(cls, cfg, classnames, clip_model):
        node = cfg.TRAINER.IVLP
        print("Building custom CLIP (independent vision-language prompting)")
        model = VLPromptedCLIP(build_independent_prompts(node, classnames, clip_model, "IVLP"), clip_model,
                               round_prompts_fp16=node.ROUND_PROMPTS_FP16)
        freeze_all_but(model, model.prompt_module_name)
        return model

    @classmethod
    def from_reference(cls, state_dict):
        return independent_prompts_from_reference(state_dict)

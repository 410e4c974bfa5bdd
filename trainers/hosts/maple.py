"""MaPLe, multi-modal prompt learning (Khattak et al., CVPR 2023): deep text prompts, and vision prompts
*projected from them*, on the stock CLIP towers.

Layer 0: text ``ctx`` at positions 1..n, vision ``proj(ctx)`` appended after the patches. Layer i = 1..J-1:
``compound_prompts_text[i-1]`` replaces the text positions 1..n and ``compound_prompt_projections[i-1]`` of it
replaces the last n vision tokens. Parameter names are the reference's without ``prompt_learner.``, so a
reference checkpoint maps by dropping that prefix. Checkpointed as ``MultiModalPromptLearner``, as there.

Precision: ``ctx`` and ``proj`` are in the CLIP dtype (the reference keeps ``proj`` fp16 always, which crashes
its fp32 mode); the deep prompts and projections are fp32 and cast where they are inserted.
"""
import copy

from torch import nn

from trainers.engine import TRAINER_REGISTRY
from trainers.engine.config import config_extension, new_node
from trainers.host_api.host_trainer import HostTrainer
from trainers.hosts.parts.vl_prompts import (
    TextPromptLearner,
    VLPromptedCLIP,
    check_depth,
    normal_prompts,
    num_layers,
    require_vit,
    text_width,
    vision_width,
)

_REFERENCE_PREFIX = "prompt_learner."
_REFERENCE_BUFFERS = ("token_prefix", "token_suffix")


@config_extension
def add_maple_config(cfg):
    cfg.TRAINER.MAPLE = new_node(
        N_CTX=2, CTX_INIT="a photo of a", PREC="fp16", PROMPT_DEPTH=9,
        ROUND_PROMPTS_FP16=False,  # ours: round inserted prompts through fp16 as the reference does under amp
    )


class MaPLePromptLearner(TextPromptLearner):
    def __init__(self, clip_model, classnames, n_ctx, depth, ctx_init):
        super().__init__(clip_model, classnames, n_ctx, ctx_init)
        require_vit(clip_model, "MaPLe")
        check_depth("TRAINER.MAPLE.PROMPT_DEPTH", depth, 1,
                    min(num_layers(clip_model.transformer), num_layers(clip_model.visual.transformer)))
        device = clip_model.token_embedding.weight.device
        width_t, width_v = text_width(clip_model), vision_width(clip_model)
        self.proj = nn.Linear(width_t, width_v).to(device=device, dtype=clip_model.dtype)
        self.compound_prompts_text = normal_prompts(depth - 1, n_ctx, width_t, device)
        # The reference deep-copies one initialised layer, so all projections start identical.
        single = nn.Linear(width_t, width_v).to(device)
        self.compound_prompt_projections = nn.ModuleList(copy.deepcopy(single) for _ in range(depth - 1))
        print(f"MaPLe design: multi-modal prompt learning, depth {depth}")

    @property
    def has_vision_prompts(self):
        return True

    def deep_text_prompts(self):
        return list(self.compound_prompts_text)

    def vision_prompts(self):
        deep = [project(prompt) for project, prompt in zip(self.compound_prompt_projections,
                                                           self.compound_prompts_text)]
        return self.proj(self.ctx), deep


class MaPLeCLIP(VLPromptedCLIP):
    config_node = "MAPLE"
    checkpoint_name = "MultiModalPromptLearner"

    def __init__(self, node, classnames, clip_model):
        learner = MaPLePromptLearner(clip_model, classnames, node.N_CTX, node.PROMPT_DEPTH, node.CTX_INIT)
        super().__init__(learner, clip_model, node.ROUND_PROMPTS_FP16)

    @classmethod
    def adapt_state_dict(cls, state_dict):
        """A reference checkpoint holds the whole CustomCLIP: keep ``prompt_learner.*`` but the token buffers."""
        if not any(key.startswith(_REFERENCE_PREFIX) for key in state_dict):
            return state_dict
        ours = {key[len(_REFERENCE_PREFIX):]: value for key, value in state_dict.items()
                if key.startswith(_REFERENCE_PREFIX) and key[len(_REFERENCE_PREFIX):] not in _REFERENCE_BUFFERS}
        print(f"Reference checkpoint layout: kept {len(ours)} prompt tensors of {len(state_dict)} entries")
        return ours


@TRAINER_REGISTRY.register()
class MaPLe(HostTrainer):
    model_class = MaPLeCLIP
    paper_configs = {"base2new": "vit_b16_c2_ep5_batch4_2ctx", "cross": "vit_b16_c2_ep5_batch4_2ctx_cross_datasets"}

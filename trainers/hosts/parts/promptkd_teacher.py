"""PromptKD's teacher: a frozen CLIP with PromptSRC's (IVLP's) prompts, usually on a larger backbone (ViT-L/14).

Where it comes from is ``TRAINER.PROMPTKD.TEACHER_DIR``, one of
- a PromptSRC run of this repository (a folder holding ``VLPromptLearner/``): its checkpoint records the backbone
  and the prompt settings it was trained with;
- the PromptKD release layout, ``<dir>/<DATASET.NAME>/VLPromptLearner/model-best.pth.tar`` (the reference's
  whole-model checkpoints; the backbone is ``TRAINER.PROMPTKD.TEACHER_NAME``, the prompt template ``CTX_INIT``);
- a checkpoint file of either kind.
``model-best.pth.tar`` is preferred where there is one, else the latest epoch. The prompt shapes (token counts,
depths) are read from the checkpoint itself, so any PromptSRC design loads.

The teacher never trains: its parameters have no gradient, it stays in eval mode whatever ``train()`` is asked,
and it is no registered model, so no optimiser or checkpoint of the student's run holds it.
"""
import os
from types import SimpleNamespace

import clip
import torch
from torch import nn

from trainers.hosts.parts.vl_prompts import IndependentVLCLIP, text_width
from trainers.prompted_clip import load_clip
from trainers.run.checkpoints import BEST_FILE, latest_checkpoint, load_checkpoint
from trainers.run.config_keys import ConfigError

TEACHER_FOLDER = "VLPromptLearner"
_RECORDED_BACKBONE = "MODEL.BACKBONE.NAME"


def _checkpoint_in(folder):
    best = os.path.join(folder, BEST_FILE)
    return best if os.path.isfile(best) else latest_checkpoint(folder)


def teacher_checkpoint(teacher_dir, dataset_name):
    """The teacher's checkpoint file, or a two-line error saying where it was looked for and what may be given."""
    found = None
    if teacher_dir and os.path.isfile(teacher_dir):
        found = teacher_dir
    elif teacher_dir:
        own = os.path.join(teacher_dir, TEACHER_FOLDER)
        release = os.path.join(teacher_dir, dataset_name, TEACHER_FOLDER)
        for folder in (own, release):
            if os.path.isdir(folder) and _checkpoint_in(folder):
                found = _checkpoint_in(folder)
                break
    if found is None:
        where = repr(teacher_dir) if teacher_dir else "empty"
        raise FileNotFoundError(
            f"PromptKD needs a trained teacher, and TRAINER.PROMPTKD.TEACHER_DIR ({where}) holds none.\n"
            f"Give a PromptSRC run (a folder with {TEACHER_FOLDER}/), the PromptKD release folder "
            f"(<dir>/{dataset_name}/{TEACHER_FOLDER}/{BEST_FILE}) or a checkpoint file.")
    return found


class PromptKDTeacher(IndependentVLCLIP):
    """The teacher model: IVLP's architecture, frozen, always in eval mode."""

    config_node = "PROMPTKD"  # names the teacher in error messages; it has no node of its own

    def train(self, mode=True):
        return super().train(False)


def _recorded_setting(record, suffix):
    """A setting of the node the teacher run was trained with (``TRAINER.<node>.<suffix>``), or None."""
    for key, value in ((record or {}).get("settings") or {}).items():
        if key.startswith("TRAINER.") and key.endswith("." + suffix):
            return value
    return None


def teacher_design(state, ctx_init):
    """The node ``IndependentVLCLIP`` is built from, read off the prompt tensors of the teacher's checkpoint."""
    if "ctx" not in state:
        raise KeyError("The teacher checkpoint holds no text context (prompt_learner.ctx): is it a PromptSRC run?")
    deep_text = sum(key.startswith("deep_text.") for key in state)
    deep_vision = sum(key.startswith("deep_vision.") for key in state)
    vision = state.get("vision_ctx")
    return SimpleNamespace(N_CTX_TEXT=state["ctx"].shape[0], PROMPT_DEPTH_TEXT=deep_text + 1,
                           N_CTX_VISION=0 if vision is None else vision.shape[0],
                           PROMPT_DEPTH_VISION=0 if vision is None else deep_vision + 1,
                           CTX_INIT=ctx_init, ROUND_PROMPTS_FP16=False)


def load_teacher(node, dataset_name, classnames, device, fp32, cache_dir="", round_prompts_fp16=False):
    """The frozen teacher for ``classnames``, on ``device``, fp32 or CLIP's released fp16."""
    path = teacher_checkpoint(node.TEACHER_DIR, dataset_name)
    checkpoint = load_checkpoint(path)
    record = checkpoint.get("host")
    recorded = ((record or {}).get("settings") or {}).get(_RECORDED_BACKBONE)
    backbone = node.TEACHER_NAME or recorded
    if not backbone:
        raise ConfigError(f"The teacher {path} does not record its backbone: set TRAINER.PROMPTKD.TEACHER_NAME")
    if recorded and recorded != backbone:
        raise ConfigError(f"TRAINER.PROMPTKD.TEACHER_NAME is {backbone!r}, but the teacher {path} was trained on "
                          f"{recorded!r}: set TEACHER_NAME to it (or to \"\", to take the recorded one)")
    state = IndependentVLCLIP.adapt_state_dict(checkpoint["state_dict"])
    ctx_init = _recorded_setting(record, "CTX_INIT")
    design = teacher_design(state, node.CTX_INIT if ctx_init is None else ctx_init)
    design.ROUND_PROMPTS_FP16 = round_prompts_fp16
    print(f'Loading the PromptKD teacher ({backbone}) from "{path}"')
    clip_model = load_clip(backbone, device, fp32=fp32, cache_dir=cache_dir)
    if not fp32 and clip_model.dtype != torch.float16:
        clip.model.convert_weights(clip_model)  # weights saved in fp32: the student's fp16, as released weights
    if text_width(clip_model) != state["ctx"].shape[1]:
        raise ConfigError(f"The teacher prompts in {path} are {state['ctx'].shape[1]} wide, but {backbone}'s text "
                          f"tower is {text_width(clip_model)} wide: set TRAINER.PROMPTKD.TEACHER_NAME to its backbone")
    teacher = PromptKDTeacher(design, classnames, clip_model)
    teacher.embed_dim = clip_model.text_projection.shape[1]
    teacher.run_id = (checkpoint.get("run") or {}).get("run_id")  # a run of ours records its id; a release does not
    expected = set(teacher.prompt_learner.state_dict())
    if set(state) != expected:
        raise KeyError(f"The teacher checkpoint {path} does not fit the teacher: missing "
                       f"{sorted(expected - set(state))}, unexpected {sorted(set(state) - expected)}")
    teacher.prompt_learner.load_state_dict(state, strict=False)
    for param in teacher.parameters():
        param.requires_grad_(False)
    return freeze(teacher.to(device))


def freeze(module: nn.Module):
    module.eval()
    for param in module.parameters():
        param.requires_grad_(False)
    return module

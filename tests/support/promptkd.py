"""PromptKD's teacher for the tests: a tiny CLIP of another width than the student's, with PromptSRC prompts saved
as a PromptSRC run of this repository would save them, and the PromptKD CPU config pointing at it."""
import os

import torch

from trainers.engine.config import build_cfg
from trainers.host_api.interface import build_host
from trainers.host_api.settings import host_record
from trainers.hosts.promptsrc import PromptSRCCLIP
from trainers.prompted_clip import load_clip, save_tiny_clip

# The student is the tests' tiny CLIP (width 64, embedding 32); the teacher is wider: 96, embedding 48.
TEACHER_CLIP = dict(seed=7, embed_dim=48, vision_width=96, transformer_width=96, transformer_heads=4)
PROMPTKD_YAML = "configs/trainers/PromptKD/cpu_tiny.yaml"
CLASSNAMES_FOR_TEACHER = ["anything"]  # the prompts do not depend on the classes


def make_teacher(folder, seed=0):
    """(teacher CLIP path, teacher run directory): random PromptSRC prompts (depth 2, 4 + 4 tokens), saved in
    ``<run>/VLPromptLearner/model.pth.tar-1`` with the host record of a run of ours."""
    os.makedirs(folder, exist_ok=True)
    clip_path = save_tiny_clip(os.path.join(folder, "teacher_clip.pt"), **TEACHER_CLIP)
    cfg = build_cfg(["configs/trainers/PromptSRC/cpu_tiny.yaml"], ["MODEL.BACKBONE.NAME", clip_path],
                    trainer="PromptSRC")
    torch.manual_seed(seed)
    model = build_host(PromptSRCCLIP, cfg, CLASSNAMES_FOR_TEACHER, load_clip(clip_path))
    with torch.no_grad():  # a "trained" teacher: its context moved away from the init phrase
        model.prompt_learner.ctx.add_(0.05 * torch.randn_like(model.prompt_learner.ctx))
    run = os.path.join(folder, "teacher_run")
    os.makedirs(os.path.join(run, "VLPromptLearner"), exist_ok=True)
    torch.save({"state_dict": model.prompt_learner.state_dict(), "epoch": 1,
                "host": host_record(cfg, "PromptSRC", PromptSRCCLIP)},
               os.path.join(run, "VLPromptLearner", "model.pth.tar-1"))
    return clip_path, run


def teacher_opts(clip_path, run):
    return ["TRAINER.PROMPTKD.TEACHER_NAME", clip_path, "TRAINER.PROMPTKD.TEACHER_DIR", run]


def write_promptkd_yaml(path, clip_path, run):
    """The shipped CPU config with the teacher filled in (what a user does with the two keys)."""
    with open(PROMPTKD_YAML) as f:
        text = f.read()
    text = text.replace('TEACHER_NAME: ""', f'TEACHER_NAME: "{clip_path}"').replace('TEACHER_DIR: ""',
                                                                                 f'TEACHER_DIR: "{run}"')
    with open(path, "w") as f:
        f.write(text)
    return path

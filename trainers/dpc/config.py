"""``TRAINER.DPC`` and the reference code's ``SPLE`` keys, which are accepted and mapped onto it."""
import os

from yacs.config import CfgNode as CN

from trainers.engine.config import config_extension, new_node
from trainers.run.config_keys import get_key

BASE_PROMPT_MODES = ("parallel", "mixed")
NEGATIVE_POOLS = ("train", "full")  # or a path to an image-library json


@config_extension
def add_dpc_config(cfg):
    cfg.TRAINER.DPC = new_node(
        HOST="",  # registered host trainer; "" = the one the stage-1 (or DPC) checkpoint records
        BACKBONE_DIR="",  # stage-1 run directory of the host, or a checkpoint file inside it
        BACKBONE_EPOCH=-1,  # stage-1 epoch; -1 = the latest (or model-best when only that exists)
        ALLOW_UNFINISHED_STAGE1=False,  # True: train on a stage 1 with no finished results.json (recorded)
        WEIGHT_BASE=0.2,  # omega_b
        WEIGHT_NEW=0.0,  # omega_n: weight of P' for new classes and other datasets
        BASE_PROMPT="parallel",  # parallel = the released code (P' alone, 1/omega_b gradient); mixed = paper
        TOPK=8,  # K of the hard-negative sampler (clamped to the class count)
        MIN_NEGATIVES=2,  # random unused classes top a sample up to this many negatives
        NEGATIVE_POOL="train",  # train | full | path to an image-library json
        HOST_LOSS_WEIGHT=0.0,  # optional weight of the host's own loss
        DHNO=True,  # False: P' trains with the host's own loss on the anchors (two-step tuning alone)
    )
    # The released code's names (method called SPLE there). Unused ones are accepted so that its
    # configs and command lines run unchanged.
    sple = CN(new_allowed=True)
    sple.BACK_CKPT_PATH = ""
    sple.BACK_CKPT_EPOCH = -1
    sple.INFER_TOPK = 8
    sple.PIC_LIB = ""
    sple.INFER_NONREPEAT = True
    sple.LOSS_KD_WEIGHT = 0.0
    sple.KD_INFER = False
    sple.STACK = new_node(MODE="converse", WEIGHT=0.2, WEIGHT_FOR_NEW=0.0, LOOP_DEPTH=1)
    sple.SPLE_TRAINER = CN(new_allowed=True)
    cfg.SPLE = sple


# (SPLE key, DPC key, value converter)
SPLE_TO_DPC = (
    ("BACK_CKPT_PATH", "BACKBONE_DIR", str),
    ("BACK_CKPT_EPOCH", "BACKBONE_EPOCH", int),
    ("INFER_TOPK", "TOPK", int),
    ("PIC_LIB", "NEGATIVE_POOL", str),
    ("STACK.MODE", "BASE_PROMPT", lambda mode: _stack_mode(mode)),
    ("STACK.WEIGHT", "WEIGHT_BASE", float),
    ("STACK.WEIGHT_FOR_NEW", "WEIGHT_NEW", float),
)


def _stack_mode(mode):
    # The released code tests for the word: its PromptKD configs say "loop+converse" (the loop part is unused).
    if "converse" not in mode:
        raise ValueError(f"SPLE.STACK.MODE {mode!r}: only 'converse' (= TRAINER.DPC.BASE_PROMPT parallel) "
                         "exists in the released code; use TRAINER.DPC.BASE_PROMPT for other modes")
    return "parallel"


def map_reference_keys(cfg, defaults):
    """Copy every ``SPLE.*`` value that differs from its default onto ``TRAINER.DPC``; returns a log line."""
    mapped = []
    for sple_key, dpc_key, convert in SPLE_TO_DPC:
        value = get_key(cfg.SPLE, sple_key)
        if value != get_key(defaults.SPLE, sple_key):
            setattr(cfg.TRAINER.DPC, dpc_key, convert(value))
            mapped.append(f"SPLE.{sple_key}={value!r} -> TRAINER.DPC.{dpc_key}={getattr(cfg.TRAINER.DPC, dpc_key)!r}")
    return "Reference-code keys mapped: " + "; ".join(mapped) if mapped else ""


def check_dpc_config(dpc):
    """Every TRAINER.DPC value, checked when the trainer is built: before any output is touched."""
    if dpc.NEGATIVE_POOL not in NEGATIVE_POOLS and not os.path.isfile(dpc.NEGATIVE_POOL):
        raise ValueError(f"TRAINER.DPC.NEGATIVE_POOL must be one of {NEGATIVE_POOLS} or an existing image-library "
                         f"json file; got {dpc.NEGATIVE_POOL!r}")
    if dpc.BASE_PROMPT not in BASE_PROMPT_MODES:
        raise ValueError(f"TRAINER.DPC.BASE_PROMPT must be one of {BASE_PROMPT_MODES}, got {dpc.BASE_PROMPT!r}")
    for key in ("WEIGHT_BASE", "WEIGHT_NEW"):
        if not 0.0 <= getattr(dpc, key) <= 1.0:
            raise ValueError(f"TRAINER.DPC.{key} must lie in [0, 1], got {getattr(dpc, key)}")
    if dpc.TOPK < 1 or dpc.MIN_NEGATIVES < 0:
        raise ValueError(f"TRAINER.DPC.TOPK must be >= 1 and MIN_NEGATIVES >= 0, got {dpc.TOPK}, {dpc.MIN_NEGATIVES}")

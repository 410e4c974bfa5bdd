"""Every DPC config names its host in the file name, carries the host's settings and the paper's defaults."""
import glob
import os

import pytest

import trainers
from trainers.engine import TRAINER_REGISTRY, get_cfg_default

PAPER_CONFIGS = sorted(glob.glob("configs/trainers/DPC/*_vit_b16_ep20_batch4.yaml"))


def load(path):
    cfg = trainers.extend_cfg(get_cfg_default())
    cfg.merge_from_file(path)
    return cfg


def test_there_is_a_paper_config_per_host():
    hosts = {load(path).TRAINER.DPC.HOST for path in PAPER_CONFIGS}
    assert hosts == {"CoOp", "CoCoOp", "KgCoOp", "IVLP", "MaPLe", "PromptSRC"}


@pytest.mark.parametrize("path", PAPER_CONFIGS, ids=os.path.basename)
def test_paper_defaults_and_host_in_the_file_name(path):
    cfg = load(path)
    dpc = cfg.TRAINER.DPC
    assert os.path.basename(path).startswith(dpc.HOST.lower() + "_")
    assert TRAINER_REGISTRY.get(dpc.HOST).model_class is not None
    assert (dpc.WEIGHT_BASE, dpc.WEIGHT_NEW, dpc.TOPK, dpc.BASE_PROMPT) == (0.2, 0.0, 8, "parallel")
    assert cfg.DATALOADER.TRAIN_X.BATCH_SIZE == 4
    optim = cfg.OPTIM
    assert (optim.NAME, optim.LR, optim.MAX_EPOCH, optim.LR_SCHEDULER) == ("sgd", 0.002, 20, "cosine")
    assert (optim.WARMUP_EPOCH, optim.WARMUP_TYPE, optim.WARMUP_CONS_LR) == (1, "constant", 1e-5)
    host_node = getattr(cfg.TRAINER, TRAINER_REGISTRY.get(dpc.HOST).model_class.config_node)
    assert host_node.CTX_INIT == "a photo of a"  # the host's own settings travel with the file

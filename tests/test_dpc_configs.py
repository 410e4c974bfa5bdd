"""DPC's configs hold DPC's own settings only (the paper's defaults); the host comes from the stage-1 run."""
import glob
import os

import pytest

from trainers import extend_cfg
from trainers.engine import get_cfg_default
from trainers.engine.config import build_cfg
from trainers.engine.identity import config_hash
from trainers.host_api.host_trainer import host_model_class, registered_hosts

DPC_CONFIGS = sorted(glob.glob("configs/trainers/DPC/*.yaml")) + ["configs/demo/dpc.yaml"]


def test_the_paper_config_has_the_papers_defaults():
    cfg = build_cfg(["configs/trainers/DPC/vit_b16_ep20_batch4.yaml"])
    dpc, optim = cfg.TRAINER.DPC, cfg.OPTIM
    assert (dpc.WEIGHT_BASE, dpc.WEIGHT_NEW, dpc.TOPK, dpc.BASE_PROMPT, dpc.HOST) == (0.2, 0.0, 8, "parallel", "")
    assert cfg.DATALOADER.TRAIN_X.BATCH_SIZE == 4
    assert (optim.NAME, optim.LR, optim.MAX_EPOCH, optim.LR_SCHEDULER) == ("sgd", 0.002, 20, "cosine")
    assert (optim.WARMUP_EPOCH, optim.WARMUP_TYPE, optim.WARMUP_CONS_LR) == (1, "constant", 1e-5)


def test_dhno_on_leaves_a_runs_identity_as_before_the_key_existed():
    """Finished DPC runs (recorded before TRAINER.DPC.DHNO existed) stay finished; DHNO off is another run."""
    paper = ["configs/trainers/DPC/vit_b16_ep20_batch4.yaml"]
    on, off = build_cfg(paper, trainer="DPC"), build_cfg(paper, ["TRAINER.DPC.DHNO", "False"], trainer="DPC")
    before = on.clone()
    before.defrost()
    del before.TRAINER.DPC["DHNO"]
    assert on.TRAINER.DPC.DHNO is True and off.TRAINER.DPC.DHNO is False
    assert config_hash(on) == config_hash(before) != config_hash(off)


@pytest.mark.parametrize("path", DPC_CONFIGS, ids=os.path.basename)
def test_no_dpc_config_sets_a_host_setting(path):
    cfg, defaults = build_cfg([path]), extend_cfg(get_cfg_default())
    assert cfg.TRAINER.DPC.HOST == "" and cfg.MODEL.BACKBONE.NAME == ""
    for host in registered_hosts():
        node = host_model_class(host).config_node
        assert cfg.TRAINER[node] == defaults.TRAINER[node], (path, node)

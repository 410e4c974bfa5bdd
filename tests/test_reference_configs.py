"""The reference code's DPC config paths (``configs/trainers/SPLE/<Host>/``) are shipped as ``_BASE_`` aliases of
our DPC config: each builds the values of the reference file of the same name."""
import glob
import os

import pytest

from tools.pipeline.configs import resolve_max_epoch, selects_best_val
from trainers import extend_cfg
from trainers.engine import get_cfg_default
from trainers.engine.config import build_cfg
from trainers.host_api.host_trainer import host_model_class, registered_hosts
from trainers.run.config_keys import ConfigError

# The reference code's configs/trainers/SPLE/CoOp/*.yaml: the values that decide a run (batch, LR, epochs,
# SPLE.INFER_TOPK, SPLE.STACK.WEIGHT, SPLE.STACK.WEIGHT_FOR_NEW).
REFERENCE_COOP = {
    "vit_b16_ep20": (4, 0.002, 20, 8, 0.5, 0.0),
    "vit_b16_ep10_lr35": (4, 0.0035, 10, 8, 0.5, 0.0),
    "vit_b16_ep10_bs2top2": (2, 0.002, 10, 2, 0.5, 0.0),
    "vit_b16_ep20_bs16top2": (16, 0.002, 20, 2, 0.5, 0.0),
    "vit_b16_ep20_bs8top4": (8, 0.002, 20, 4, 0.2, 0.0),
}
SHARED = {"OPTIM.NAME": "sgd", "OPTIM.LR_SCHEDULER": "cosine", "OPTIM.WARMUP_EPOCH": 1,
          "OPTIM.WARMUP_TYPE": "constant", "OPTIM.WARMUP_CONS_LR": 1e-5, "TRAINER.DPC.BASE_PROMPT": "parallel"}


def value(cfg, dotted):
    for part in dotted.split("."):
        cfg = getattr(cfg, part)
    return cfg


def test_every_reference_coop_config_path_is_shipped():
    shipped = {os.path.basename(p)[:-5] for p in glob.glob("configs/trainers/SPLE/CoOp/*.yaml")}
    assert shipped == set(REFERENCE_COOP)


@pytest.mark.parametrize("name", sorted(REFERENCE_COOP))
def test_the_alias_builds_the_reference_values(name):
    cfg = build_cfg([f"configs/trainers/SPLE/CoOp/{name}.yaml"], trainer="StackSPLE_CoOp")
    dpc = cfg.TRAINER.DPC
    assert (cfg.DATALOADER.TRAIN_X.BATCH_SIZE, cfg.OPTIM.LR, cfg.OPTIM.MAX_EPOCH, dpc.TOPK, dpc.WEIGHT_BASE,
            dpc.WEIGHT_NEW) == REFERENCE_COOP[name]
    assert {key: value(cfg, key) for key in SHARED} == SHARED
    assert dpc.HOST == "CoOp" and cfg.MODEL.BACKBONE.NAME == ""  # the host and its backbone come from stage 1
    defaults = extend_cfg(get_cfg_default())
    for host in registered_hosts():  # no host setting either: stage 1's are inherited
        node = host_model_class(host).config_node
        assert cfg.TRAINER[node] == defaults.TRAINER[node], (name, node)


def test_the_command_line_overrides_an_alias_value():
    """The reference README passes SPLE.STACK.WEIGHT 0.2 over a file that says 0.5: the command line wins."""
    cfg = build_cfg(["configs/trainers/SPLE/CoOp/vit_b16_ep20.yaml"], ["SPLE.STACK.WEIGHT", "0.2"],
                    trainer="StackSPLE_CoOp")
    assert cfg.TRAINER.DPC.WEIGHT_BASE == 0.2


def write(path, text):
    path.write_text(text)
    return str(path)


def test_a_missing_base_is_named_with_the_alias(tmp_path):
    alias = write(tmp_path / "alias.yaml", "_BASE_: nowhere.yaml\n")
    with pytest.raises(ConfigError, match=r"Config file not found: .*nowhere\.yaml \(the _BASE_ of .*alias\.yaml\)"):
        build_cfg([alias])


def test_a_base_loop_is_an_error(tmp_path):
    write(tmp_path / "a.yaml", "_BASE_: b.yaml\n")
    write(tmp_path / "b.yaml", "_BASE_: a.yaml\n")
    with pytest.raises(ConfigError, match="_BASE_ chain loops back to itself"):
        build_cfg([str(tmp_path / "a.yaml")])


def test_an_unknown_key_in_an_alias_is_named(tmp_path):
    alias = write(tmp_path / "alias.yaml", f"_BASE_: {os.path.abspath('configs/trainers/DPC/cpu_tiny.yaml')}\n"
                  "OPTIM:\n  MAX_EPOHC: 3\n")
    with pytest.raises(ConfigError, match=r"alias\.yaml: .*MAX_EPOHC"):
        build_cfg([alias])


def test_the_pipeline_reads_an_alias_of_an_unregistered_trainer_through_its_base(tmp_path):
    """A trainer the pipeline cannot build (not registered here): its last epoch and model selection are read
    from the yaml files alone, following ``_BASE_`` as train.py's merge does."""
    (tmp_path / "base.yaml").write_text("OPTIM:\n  MAX_EPOCH: 7\nTEST:\n  FINAL_MODEL: best_val\n")
    (tmp_path / "alias.yaml").write_text("_BASE_: base.yaml\nOPTIM:\n  LR: 0.1\n")
    alias, warnings = str(tmp_path / "alias.yaml"), []
    assert resolve_max_epoch("NotRegisteredHere", [alias], [], warn=warnings.append) == 7
    assert resolve_max_epoch("NotRegisteredHere", [alias], ["OPTIM.MAX_EPOCH", "3"], warn=warnings.append) == 3
    assert selects_best_val("NotRegisteredHere", [alias], [])
    assert warnings and "not registered here" in warnings[0]
    (tmp_path / "loop.yaml").write_text("_BASE_: loop.yaml\n")
    with pytest.raises(ConfigError, match="loops back"):
        resolve_max_epoch("NotRegisteredHere", [str(tmp_path / "loop.yaml")], [], warn=warnings.append)

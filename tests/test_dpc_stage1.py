"""Stage 2 inherits the host: DPC rebuilds it as the stage-1 checkpoint records it, logs an override it can
honour, refuses one it cannot in one line, and an evaluation rebuilds it from the DPC checkpoint alone."""
import json

import pytest
from support.runs import run_train, train_argv

from trainers.run.config_keys import ConfigError

pytestmark = pytest.mark.slow  # every test here trains through train.py

@pytest.fixture(scope="module")
def stage1(tmp_path_factory, shapes12, tiny_clip_path):
    """IVLP's CPU config (2 + 2 tokens, depth 2, fp32) for one epoch on the session's 12 shape classes."""
    tmp = tmp_path_factory.mktemp("stage1")
    root = shapes12
    run_train(*train_argv("IVLP", root, tiny_clip_path, tmp / "ivlp", epochs=1))
    return {"root": root, "clip": tiny_clip_path, "tmp": tmp, "run": tmp / "ivlp"}


def dpc(stage1, out, *opts, flags=(), backbone=True, subsample="base"):
    """DPC with its generic config: no host, and (``backbone=False``) no backbone on the command line."""
    clip = stage1["clip"] if backbone else None
    return run_train(*train_argv("DPC", stage1["root"], clip, stage1["tmp"] / out, *opts, flags=flags,
                                 subsample=subsample, epochs=1, print_freq=None))


def test_the_generic_config_rebuilds_the_stage1_host(stage1, capsys):
    trained = dpc(stage1, "dpc", "TRAINER.DPC.BACKBONE_DIR", stage1["run"], backbone=False)
    node = trained.cfg.TRAINER.IVLP
    assert trained.cfg.TRAINER.DPC.HOST == "IVLP" and trained.cfg.MODEL.BACKBONE.NAME == stage1["clip"]
    assert (node.N_CTX_TEXT, node.PROMPT_DEPTH_TEXT, node.PREC) == (2, 2, "fp32")  # IVLP's defaults: 2, 9, fp16
    assert "Host IVLP rebuilt as" in capsys.readouterr().out
    assert json.loads((stage1["tmp"] / "dpc" / "results.json").read_text())["config"]["TRAINER"]["IVLP"][
        "PROMPT_DEPTH_TEXT"] == 2


@pytest.mark.parametrize("opts, message", [
    (("TRAINER.IVLP.N_CTX_TEXT", 4), r"TRAINER\.IVLP\.N_CTX_TEXT is 4 here, but .* was trained with 2"),
    (("TRAINER.IVLP.PROMPT_DEPTH_VISION", 1), r"TRAINER\.IVLP\.PROMPT_DEPTH_VISION is 1 here, but .* with 2"),
    # 9 is IVLP's default: written on the command line, it is given all the same
    (("TRAINER.IVLP.PROMPT_DEPTH_TEXT", 9), r"TRAINER\.IVLP\.PROMPT_DEPTH_TEXT is 9 here, but .* with 2"),
    (("MODEL.BACKBONE.NAME", "ViT-B/16"), r"MODEL\.BACKBONE\.NAME is 'ViT-B/16' here"),
    (("TRAINER.DPC.HOST", "CoOp"), r"TRAINER\.DPC\.HOST is 'CoOp', but .* holds prompts of 'IVLP'"),
])
def test_a_contradiction_it_cannot_honour_is_one_line(stage1, opts, message):
    with pytest.raises(ConfigError, match=message) as err:
        dpc(stage1, "refused", "TRAINER.DPC.BACKBONE_DIR", stage1["run"], *opts, backbone=False)
    assert "\n" not in str(err.value)
    assert not (stage1["tmp"] / "refused").exists()  # refused before anything ran


def test_an_override_it_can_honour_is_logged(stage1, capsys):
    trained = dpc(stage1, "override", "TRAINER.DPC.BACKBONE_DIR", stage1["run"], "TRAINER.IVLP.PREC", "amp",
                  "TRAINER.IVLP.ROUND_PROMPTS_FP16", True, flags=("--no-train",))
    log = capsys.readouterr().out
    assert "Override of the host's TRAINER.IVLP.PREC: 'fp32' in" in log and "'amp' here" in log
    assert "Override of the host's TRAINER.IVLP.ROUND_PROMPTS_FP16: False in" in log
    assert trained.cfg.TRAINER.IVLP.PREC == "amp" and trained.host.round_prompts_fp16


def test_an_evaluation_rebuilds_the_host_from_the_dpc_checkpoint_alone(stage1, capsys):
    stage2 = stage1["tmp"] / "dpc_for_eval"
    trained = dpc(stage1, "dpc_for_eval", "TRAINER.DPC.BACKBONE_DIR", stage1["run"], backbone=False)
    capsys.readouterr()
    evaluated = dpc(stage1, "dpc_eval", flags=("--eval-only", "--model-dir", stage2, "--load-epoch", 1),
                    backbone=False)
    assert "Host IVLP rebuilt as" in capsys.readouterr().out
    assert evaluated.cfg.TRAINER.IVLP == trained.cfg.TRAINER.IVLP
    assert evaluated.cfg.MODEL.BACKBONE.NAME == stage1["clip"]
    accuracy = [json.loads((stage1["tmp"] / d / "results.json").read_text())["accuracy"]
                for d in ("dpc_for_eval", "dpc_eval")]
    assert accuracy[0] == accuracy[1]  # the same base-class model on the same test images


@pytest.mark.parametrize("given, prec, note", [
    (set(), "fp32", False),  # not given: the record's value
    ({"TRAINER.IVLP.PREC"}, "fp16", True),  # given, though it is the default: an override, logged
])
def test_a_key_counts_as_given_when_the_run_sets_it_whatever_its_value(given, prec, note):
    from trainers import extend_cfg
    from trainers.dpc.stage1 import inherit_host
    from trainers.engine import get_cfg_default

    cfg = extend_cfg(get_cfg_default())
    assert cfg.TRAINER.IVLP.PREC == "fp16"  # the default
    notes = inherit_host(cfg, given, {"trainer": "IVLP", "settings": {"TRAINER.IVLP.PREC": "fp32"}}, "stage1.pth")
    assert cfg.TRAINER.IVLP.PREC == prec
    override = "Override of the host's TRAINER.IVLP.PREC: 'fp32' in stage1.pth, 'fp16' here"
    assert (override in notes) == note

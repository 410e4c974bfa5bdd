"""MODEL.REFERENCE_PARITY implies ROUND_PROMPTS_FP16 for IVLP, PromptSRC and MaPLe, whose references round every
inserted prompt through fp16: unless the run writes the key (yaml, _BASE_ chain, command line), whatever its value;
a written False wins. The config that is printed, recorded and hashed holds the value used; the log says why."""
import pytest
from support.hosts import cpu_yaml
from support.runs import SHAPES_YAML, run_train, train_argv

from trainers.engine.config import build_cfg
from trainers.host_api.host_trainer import host_model_class, registered_hosts
from trainers.run.config_keys import ConfigError

ROUNDING_HOSTS = {"IVLP": "IVLP", "PromptSRC": "PROMPTSRC", "MaPLe": "MAPLE"}  # host -> its config node


def rounding(cfg):
    return {node: cfg.TRAINER[node].ROUND_PROMPTS_FP16 for node in ROUNDING_HOSTS.values()}


def build(host, *opts, files=None):
    notes = []
    cfg = build_cfg(files or [cpu_yaml(host)], opts, trainer=host, notes=notes)
    return cfg, notes


def write_yaml(path, text):
    path.write_text(text)
    return str(path)


def test_exactly_the_hosts_whose_reference_rounds_declare_it():
    declared = {h for h in registered_hosts() if host_model_class(h).reference_rounds_prompts_fp16}
    assert declared == set(ROUNDING_HOSTS)  # not PromptKD, CoOp, CoCoOp, KgCoOp


@pytest.mark.parametrize("host", sorted(ROUNDING_HOSTS))
def test_without_the_switch_nothing_changes(host):
    cfg, notes = build(host)
    assert rounding(cfg) == dict.fromkeys(ROUNDING_HOSTS.values(), False) and notes == []
    assert build(host, "MODEL.REFERENCE_PARITY", False)[0] == cfg


@pytest.mark.parametrize("host", sorted(ROUNDING_HOSTS))
def test_the_switch_alone_implies_the_rounding_and_says_so_once(host):
    cfg, notes = build(host, "MODEL.REFERENCE_PARITY", True)
    assert rounding(cfg) == dict.fromkeys(ROUNDING_HOSTS.values(), True)
    assert cfg.TRAINER.PROMPTKD.ROUND_PROMPTS_FP16 is False  # not a host whose reference was measured to round
    key = f"TRAINER.{ROUNDING_HOSTS[host]}.ROUND_PROMPTS_FP16"
    assert notes == [f"{key} True (implied by MODEL.REFERENCE_PARITY): inserted prompts are rounded through fp16, "
                     "as the reference rounds them"]


def test_hosts_whose_reference_does_not_round_get_no_line():
    cfg, notes = build("CoOp", "MODEL.REFERENCE_PARITY", True)
    assert notes == [] and cfg.MODEL.REFERENCE_PARITY


@pytest.mark.parametrize("value", [False, True])
def test_a_value_written_on_the_command_line_wins(value):
    cfg, notes = build("MaPLe", "MODEL.REFERENCE_PARITY", True, "TRAINER.MAPLE.ROUND_PROMPTS_FP16", value)
    assert cfg.TRAINER.MAPLE.ROUND_PROMPTS_FP16 is value
    assert cfg.TRAINER.IVLP.ROUND_PROMPTS_FP16 is True  # another node, not written: implied
    assert len(notes) == 1
    assert ("False wins over MODEL.REFERENCE_PARITY" in notes[0]) is (not value)
    assert ("as written, with MODEL.REFERENCE_PARITY" in notes[0]) is value


def test_a_false_written_in_a_yaml_or_in_its_base_wins(tmp_path):
    method = write_yaml(tmp_path / "method.yaml", open(cpu_yaml("IVLP")).read().replace(
        "  IVLP:\n", "  IVLP:\n    ROUND_PROMPTS_FP16: False\n"))
    alias = write_yaml(tmp_path / "alias.yaml", "_BASE_: method.yaml\nMODEL:\n  REFERENCE_PARITY: True\n")
    for files, opts in (([SHAPES_YAML, method], ("MODEL.REFERENCE_PARITY", True)), ([SHAPES_YAML, alias], ())):
        cfg, notes = build("IVLP", *opts, files=files)
        assert cfg.MODEL.REFERENCE_PARITY and cfg.TRAINER.IVLP.ROUND_PROMPTS_FP16 is False
        assert cfg.TRAINER.PROMPTSRC.ROUND_PROMPTS_FP16 is True
        assert notes == ["TRAINER.IVLP.ROUND_PROMPTS_FP16 False wins over MODEL.REFERENCE_PARITY: inserted prompts "
                         "are not rounded through fp16, so logits and gradients differ from the reference's in "
                         "rounding"]


def test_the_switch_written_in_a_yaml_implies_it_too(tmp_path):
    method = write_yaml(tmp_path / "method.yaml",
                        open(cpu_yaml("PromptSRC")).read().replace("MODEL:\n", "MODEL:\n  REFERENCE_PARITY: True\n"))
    cfg, notes = build("PromptSRC", files=[SHAPES_YAML, method])
    assert cfg.MODEL.REFERENCE_PARITY and cfg.TRAINER.PROMPTSRC.ROUND_PROMPTS_FP16 is True and len(notes) == 1


def test_a_value_that_is_not_a_boolean_is_one_line(tmp_path):
    method = write_yaml(tmp_path / "method.yaml", open(cpu_yaml("MaPLe")).read().replace(
        "  MAPLE:\n", "  MAPLE:\n    ROUND_PROMPTS_FP16: null\n"))
    with pytest.raises(ConfigError, match=r"^TRAINER.MAPLE.ROUND_PROMPTS_FP16 must be True or False, got None$"):
        build("MaPLe", files=[SHAPES_YAML, method])


def test_the_run_logs_the_line_and_builds_the_rounding_host(shapes_root, tiny_clip_path, tmp_path):
    trainer = run_train(*train_argv("MaPLe", shapes_root, tiny_clip_path, tmp_path, "MODEL.REFERENCE_PARITY", True,
                                    flags=("--no-train",)))
    assert trainer.model.reference_parity and trainer.model.round_prompts_fp16 is True
    log = (tmp_path / "log.txt").read_text()
    assert log.count("TRAINER.MAPLE.ROUND_PROMPTS_FP16 True (implied by MODEL.REFERENCE_PARITY)") == 1
    assert "ROUND_PROMPTS_FP16: True" in log  # the printed config holds the value used

"""train.setup_cfg: defaults < dataset yaml < method yaml < command-line flags < trailing KEY VALUE pairs."""
import pytest
from support.runs import COOP_CPU_YAML, SHAPES_YAML, run_train, train_argv

import train
from trainers.engine import get_cfg_default
from trainers.run.config_keys import ConfigError


def parse(*argv):
    return train.build_parser().parse_args([str(a) for a in argv])


def write_yaml(path, text):
    path.write_text(text)
    return str(path)


@pytest.fixture
def yamls(tmp_path):
    """A dataset yaml and a method yaml that set overlapping keys."""
    dataset = write_yaml(tmp_path / "dataset.yaml", """\
DATASET:
  NAME: "ImageFolder"
  FOLDER: "from_dataset_yaml"
  NUM_SHOTS: 2
OPTIM:
  LR: 0.1
  MAX_EPOCH: 3
  GAMMA: 0.5
OUTPUT_DIR: "from_dataset_yaml"
""")
    method = write_yaml(tmp_path / "method.yaml", """\
OPTIM:
  LR: 0.2
  MAX_EPOCH: 7
SEED: 11
OUTPUT_DIR: "from_method_yaml"
TRAINER:
  NAME: "ZeroshotCLIP"
  COOP:
    N_CTX: 8
""")
    return dataset, method


def test_defaults_then_dataset_then_method_yaml(yamls):
    dataset, method = yamls
    cfg = train.setup_cfg(parse("--dataset-config-file", dataset, "--config-file", method))
    default = get_cfg_default()
    assert cfg.OPTIM.WEIGHT_DECAY == default.OPTIM.WEIGHT_DECAY == 5e-4  # untouched default
    assert cfg.OPTIM.GAMMA == 0.5  # dataset yaml only
    assert cfg.DATASET.NUM_SHOTS == 2  # dataset yaml only
    assert cfg.OPTIM.LR == 0.2 and cfg.OPTIM.MAX_EPOCH == 7  # method yaml beats dataset yaml
    assert cfg.OUTPUT_DIR == "from_method_yaml"
    assert cfg.SEED == 11  # no --seed: the config's value is kept
    assert cfg.TRAINER.NAME == "ZeroshotCLIP" and cfg.TRAINER.COOP.N_CTX == 8
    assert cfg.TRAINER.COOP.CTX_INIT == ""  # the trainer's own default (extend_cfg)
    assert cfg.is_frozen()


def test_flags_beat_yaml_and_opts_beat_flags(yamls):
    dataset, method = yamls
    cfg = train.setup_cfg(parse(
        "--dataset-config-file", dataset, "--config-file", method,
        "--output-dir", "from_flag", "--seed", 5, "--trainer", "CoOp", "--root", "flag_root",
        "--transforms", "random_flip", "normalize", "--backbone", "flag_backbone",
        "OPTIM.MAX_EPOCH", 9, "SEED", 6, "DATASET.ROOT", "opts_root",
    ))
    assert cfg.OUTPUT_DIR == "from_flag"  # flag beats both yamls
    assert cfg.TRAINER.NAME == "CoOp"
    assert cfg.MODEL.BACKBONE.NAME == "flag_backbone"
    assert list(cfg.INPUT.TRANSFORMS) == ["random_flip", "normalize"]
    assert cfg.OPTIM.LR == 0.2  # method yaml, not overridden
    assert cfg.OPTIM.MAX_EPOCH == 9  # opts beat the method yaml
    assert cfg.SEED == 6  # opts beat --seed
    assert cfg.DATASET.ROOT == "opts_root"  # opts beat --root


def test_seed_zero_is_applied_and_missing_seed_keeps_config():
    assert train.setup_cfg(parse("--seed", 0)).SEED == 0
    assert train.setup_cfg(parse()).SEED == get_cfg_default().SEED == -1
    assert train.setup_cfg(parse("SEED", 3)).SEED == 3


def test_seed_zero_seeds_the_run(tmp_path, shapes_root, tiny_clip_path, capsys):
    """``--seed 0`` really seeds: two runs with seed 0 give the same context, unlike a run with seed 1."""
    def trained_ctx(seed, name):
        trainer = run_train(*train_argv("CoOp", shapes_root, tiny_clip_path, tmp_path / name,
                                        "TRAINER.COOP.CTX_INIT", "", "TRAINER.COOP.N_CTX", 2, seed=seed, epochs=1))
        return trainer.model.prompt_learner.ctx.detach().clone()

    first = trained_ctx(0, "a")
    assert "Setting fixed seed: 0" in capsys.readouterr().out
    assert torch_equal(first, trained_ctx(0, "b"))
    assert not torch_equal(first, trained_ctx(1, "c"))


def torch_equal(a, b):
    return a.shape == b.shape and bool((a == b).all())


def test_unknown_key_in_opts_raises_an_error_naming_it():
    with pytest.raises(ConfigError, match="Command-line option: Non-existent key: OPTIM.NOT_A_KEY"):
        train.setup_cfg(parse("OPTIM.NOT_A_KEY", 1))


def test_unknown_key_in_yaml_names_the_file_and_the_key(tmp_path):
    bad = write_yaml(tmp_path / "bad.yaml", "TRAINER:\n  COOP:\n    N_CTXX: 4\n")
    with pytest.raises(ConfigError, match=f"{bad}: Non-existent config key: TRAINER.COOP.N_CTXX"):
        train.setup_cfg(parse("--config-file", bad))


def test_yaml_syntax_error_names_the_file(tmp_path):
    bad = write_yaml(tmp_path / "broken.yaml", "OPTIM:\n  LR: [0.1\n")
    with pytest.raises(ConfigError, match=f"{bad} is not valid YAML"):
        train.setup_cfg(parse("--config-file", bad))


def test_missing_config_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="Config file not found: .*nothing.yaml"):
        train.setup_cfg(parse("--config-file", tmp_path / "nothing.yaml"))


def test_repository_yamls_merge(tmp_path):
    """The shipped dataset and CPU method configs load on top of the defaults without unknown keys."""
    cfg = train.setup_cfg(parse("--dataset-config-file", SHAPES_YAML, "--config-file", COOP_CPU_YAML,
                                "--trainer", "CoOp"))
    assert cfg.DATASET.NAME == "ImageFolder" and cfg.DATASET.FOLDER == "shapes"
    assert cfg.TRAINER.COOP.CTX_INIT == "a photo of a" and cfg.TRAINER.COOP.PREC == "fp32"
    assert tuple(cfg.INPUT.SIZE) == (32, 32)
    assert cfg.OPTIM.WARMUP_CONS_LR == 1e-5


def test_init_weights_is_refused_not_ignored(tmp_path, shapes_root, tiny_clip_path):
    """Dassl's key for its own backbones means nothing to a CLIP prompt learner: one clear error, not silence."""
    with pytest.raises(ConfigError, match="MODEL.INIT_WEIGHTS 'weights.pth' is not used here"):
        run_train(*train_argv("CoOp", shapes_root, tiny_clip_path, tmp_path / "out",
                              "MODEL.INIT_WEIGHTS", "weights.pth"))
    assert not (tmp_path / "out" / "prompt_learner").exists()


def test_a_whole_number_for_a_float_key_is_that_float_on_the_command_line_and_in_a_yaml(tmp_path):
    from trainers.engine.config import build_cfg

    method = write_yaml(tmp_path / "method.yaml", "OPTIM:\n  LR: 1\n")
    cfg = build_cfg([method], ["TRAINER.DPC.HOST_LOSS_WEIGHT", "1", "OPTIM.WEIGHT_DECAY", 0])
    assert (cfg.OPTIM.LR, cfg.TRAINER.DPC.HOST_LOSS_WEIGHT, cfg.OPTIM.WEIGHT_DECAY) == (1.0, 1.0, 0.0)
    assert all(type(v) is float for v in (cfg.OPTIM.LR, cfg.TRAINER.DPC.HOST_LOSS_WEIGHT, cfg.OPTIM.WEIGHT_DECAY))
    assert type(build_cfg([], ["OPTIM.MAX_EPOCH", "3"]).OPTIM.MAX_EPOCH) is int  # an int key stays an int


@pytest.mark.parametrize("opts, expected", [
    (["TRAINER.DPC.TOPK", "many"], "TRAINER.DPC.TOPK 'many': this key takes an int (default 8), not a str"),
    (["OPTIM.LR", "[1, 2]"], "OPTIM.LR [1, 2]: this key takes a float (default 0.0003), not a list"),
    (["OPTIM.MAX_EPOCH", "2.5"], "OPTIM.MAX_EPOCH 2.5: this key takes an int (default 10), not a float"),
])
def test_any_other_type_mismatch_is_one_line_naming_key_value_and_type(opts, expected):
    from trainers.engine.config import build_cfg

    with pytest.raises(ConfigError) as err:
        build_cfg([], opts)
    assert str(err.value) == f"Command-line option {expected}"


def test_a_type_mismatch_in_a_yaml_names_the_file(tmp_path):
    from trainers.engine.config import build_cfg

    method = write_yaml(tmp_path / "method.yaml", "TRAINER:\n  DPC:\n    WEIGHT_BASE: high\n")
    with pytest.raises(ConfigError, match=r"method\.yaml: TRAINER\.DPC\.WEIGHT_BASE 'high': this key takes a float"):
        build_cfg([method], [])


def test_the_keys_a_run_writes_are_its_files_chains_flags_and_options_whatever_the_values(tmp_path):
    from trainers.engine.config import written_keys

    (tmp_path / "base.yaml").write_text("OPTIM:\n  LR: 0.002\n")  # the default's value: written all the same
    (tmp_path / "alias.yaml").write_text("_BASE_: base.yaml\nSEED: 3\n")
    written = written_keys([str(tmp_path / "alias.yaml"), ""], {"OUTPUT_DIR": "out"}, ["OPTIM.MAX_EPOCH", "2"])
    assert written == {"OPTIM", "OPTIM.LR", "SEED", "OUTPUT_DIR", "OPTIM.MAX_EPOCH"}

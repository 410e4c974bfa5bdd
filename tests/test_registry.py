"""Registries: an unknown trainer or dataset name lists the registered names and suggests the closest one."""
import re

import pytest
from support.runs import run_train, train_argv

import datasets  # noqa: F401  (registers the readers)
import trainers
from datasets.toolbox import DATASET_REGISTRY, HAVE_DASSL, build_dataset
from trainers.engine import TRAINER_REGISTRY, build_trainer, get_cfg_default


def make_cfg(trainer="", dataset=""):
    cfg = trainers.extend_cfg(get_cfg_default())
    cfg.TRAINER.NAME = trainer
    cfg.DATASET.NAME = dataset
    return cfg


def assert_suggests(message, requested, closest, registered):
    assert requested in message
    for name in registered:
        assert name in message, f"registered name {name} missing from: {message}"
    pattern = r'do you mean \[{0}\]' if HAVE_DASSL else r'Did you mean "{0}"\?'
    assert re.search(pattern.format(re.escape(closest)), message), message


def test_unknown_trainer_lists_names_and_suggests_closest():
    registered = TRAINER_REGISTRY.registered_names()
    assert {"CoOp", "ZeroshotCLIP"} <= set(registered)
    with pytest.raises(ValueError) as err:
        build_trainer(make_cfg(trainer="ZeroshotCLlP"))
    assert_suggests(str(err.value), "ZeroshotCLlP", "ZeroshotCLIP", registered)


@pytest.mark.skipif(HAVE_DASSL, reason="Dassl's suggestion is case-sensitive")
@pytest.mark.parametrize("typed", ["Coop", "coop", "COOP", "CoOP"])
def test_suggestion_ignores_case(typed):
    """A wrong capitalisation suggests the same name in the right case (not the longer CoCoOp)."""
    with pytest.raises(ValueError) as err:
        build_trainer(make_cfg(trainer=typed))
    assert_suggests(str(err.value), typed, "CoOp", TRAINER_REGISTRY.registered_names())


def test_unknown_trainer_fails_before_anything_is_written(tmp_path, shapes_root, tiny_clip_path):
    args = train_argv("CoOp", shapes_root, tiny_clip_path, tmp_path / "out")
    args[args.index("CoOp")] = "ZeroShotCLIP"
    with pytest.raises(ValueError) as err:
        run_train(*args)
    assert_suggests(str(err.value), "ZeroShotCLIP", "ZeroshotCLIP", TRAINER_REGISTRY.registered_names())
    assert not (tmp_path / "out" / "prompt_learner").exists()
    assert not (tmp_path / "data" / "shapes" / "split_fewshot").exists()


def test_unknown_dataset_lists_names_and_suggests_closest():
    registered = DATASET_REGISTRY.registered_names()
    assert {"Caltech101", "ImageFolder"} <= set(registered)
    with pytest.raises(ValueError) as err:
        build_dataset(make_cfg(dataset="caltech101"))
    assert_suggests(str(err.value), "caltech101", "Caltech101", registered)


@pytest.mark.skipif(HAVE_DASSL, reason="the built-in Registry's own messages")
def test_builtin_registry_get_and_duplicates():
    from datasets.runtime import Registry

    registry = Registry("TOY")

    @registry.register()
    class Alpha:
        pass

    registry.register(type("Beta", (), {}))
    assert registry.get("Alpha") is Alpha and "Beta" in registry
    assert registry.registered_names() == ["Alpha", "Beta"]
    with pytest.raises(KeyError, match=r'No TOY named "Alpah"\. Did you mean "Alpha"\? Registered: Alpha, Beta'):
        registry.get("Alpah")
    with pytest.raises(KeyError, match="No TOY named \"zzz\". Registered: Alpha, Beta"):
        registry.get("zzz")  # nothing close: no suggestion, still the list
    with pytest.raises(KeyError, match="already registered"):
        registry.register(Alpha)
    registry.register(Alpha, force=True)  # an explicit override is allowed

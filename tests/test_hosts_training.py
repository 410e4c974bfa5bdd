"""Each host through train.py on the shapes dataset: training lowers the loss, base -> new evaluation from the
slim checkpoint, and DPC over the host keeps the host's new-class logits at TRAINER.DPC.WEIGHT_NEW 0."""
import json

import pytest
import torch

from conftest import run_train
from datasets.shapes import make_shapes_dataset
from hosts_support import HOSTS, host_args

DPC_CPU_YAML = "configs/trainers/DPC/cpu_tiny.yaml"  # one DPC config for every host: the host comes from stage 1


@pytest.fixture(scope="module")
def stage1(tmp_path_factory, tiny_clip_path):
    """Every host trained on the base classes for 2 epochs (12 classes: 6 base, 6 new, so that DPC finds
    negatives outside a batch of 4)."""
    tmp = tmp_path_factory.mktemp("hosts")
    root = str(tmp / "data")
    make_shapes_dataset(root, colours=("red", "green", "blue", "yellow"), shapes=("circle", "square", "triangle"))
    runs = {}
    for host in HOSTS:
        runs[host] = tmp / host
        run_train(*host_args(host, root, tiny_clip_path, runs[host]))
    return {"root": root, "clip": tiny_clip_path, "tmp": tmp, "runs": runs}


def evaluate_new(stage1, host, out):
    return run_train(*host_args(host, stage1["root"], stage1["clip"], out, subsample="new",
                                flags=("--eval-only", "--model-dir", stage1["runs"][host], "--load-epoch", 2)))


def first_test_images(trainer):
    return trainer.parse_batch_test(next(iter(trainer.test_loader)))[0]


@pytest.mark.parametrize("host", HOSTS)
def test_base_to_new_from_the_slim_checkpoint(host, stage1):
    trained = stage1["runs"][host]
    base = json.loads((trained / "results.json").read_text())
    assert base["subsample_classes"] == "base" and base["n"] == 18  # 6 classes x 3 test images
    name = {"IVLP": "VLPromptLearner", "PromptSRC": "VLPromptLearner", "MaPLe": "MultiModalPromptLearner"}.get(
        host, "prompt_learner")
    saved = torch.load(trained / name / "model.pth.tar-2", weights_only=True)

    out = stage1["tmp"] / f"{host}_new"
    trainer = evaluate_new(stage1, host, out)
    assert set(saved["state_dict"]) == set(trainer.model.prompt_learner.state_dict())  # learnable tensors only
    for key, value in trainer.model.prompt_learner.state_dict().items():
        assert torch.equal(value, saved["state_dict"][key])
    new = json.loads((out / "results.json").read_text())
    assert new["subsample_classes"] == "new" and new["n"] == 18 and 0 <= new["accuracy"] <= 100
    assert trainer.model.prompt_learner.token_prefix.shape[0] == 6  # buffers rebuilt for the new classes


# Settings under which a few steps on the tiny random CLIP reliably lower each loss. KgCoOp starts at its
# score's minimum with "a photo of a" (the init equals its template), so it starts from random context here.
LOWERING = {"KgCoOp": ("OPTIM.LR", 0.002, "TRAINER.COOP.CTX_INIT", "")}


@pytest.mark.parametrize("host", HOSTS)
def test_training_lowers_the_loss(host, tmp_path, shapes_root, tiny_clip_path):
    opts = LOWERING.get(host, ("OPTIM.LR", 0.01))
    trainer = run_train(*host_args(host, shapes_root, tiny_clip_path, tmp_path, "OPTIM.WARMUP_EPOCH", 0, *opts,
                                   "TEST.NO_TEST", True, epochs=8, flags=("--no-train",)))
    images, labels = trainer.parse_batch_test(next(iter(trainer.test_loader)))

    def loss():
        with torch.no_grad():
            return trainer.model.loss(images, labels).total.item()
    before = loss()
    trainer.train()
    assert loss() < 0.98 * before


@pytest.mark.parametrize("host", HOSTS)
def test_dpc_over_the_host_keeps_new_class_logits_at_weight_new_zero(host, stage1):
    tmp, root, clip_path = stage1["tmp"], stage1["root"], stage1["clip"]

    def dpc(out, *opts, flags=(), subsample="base", epochs=1):
        return run_train("--trainer", "DPC", *flags, "--root", root, "--seed", 1,
                         "--dataset-config-file", "configs/datasets/shapes.yaml", "--config-file", DPC_CPU_YAML,
                         "--output-dir", out, "MODEL.BACKBONE.NAME", clip_path, "DATASET.NUM_SHOTS", 4,
                         "DATASET.SUBSAMPLE_CLASSES", subsample, "OPTIM.MAX_EPOCH", epochs, *opts)

    stage2 = tmp / f"{host}_dpc"
    trained = dpc(stage2, "TRAINER.DPC.BACKBONE_DIR", str(stage1["runs"][host]))
    moved = [not torch.equal(p, trained.prompts.frozen()[n]) for n, p in trained.prompts.parallel_values().items()]
    assert any(moved)  # stage 2 trained P'
    host_new = evaluate_new(stage1, host, tmp / f"{host}_host_new")
    wrapped = dpc(tmp / f"{host}_dpc_new", flags=("--eval-only", "--model-dir", stage2, "--load-epoch", 1),
                  subsample="new")
    images = first_test_images(host_new)
    with torch.no_grad():
        assert torch.equal(wrapped.inference_logits(images), host_new.model(images))
    accuracy = [json.loads((tmp / d / "results.json").read_text())["accuracy"]
                for d in (f"{host}_host_new", f"{host}_dpc_new")]
    assert accuracy[0] == accuracy[1]

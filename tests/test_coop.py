"""CoOp on tiny CLIPs: parity with zero-shot CLIP, token order, CSC, class subsets, training."""
import json
import os

import pytest
import torch
import torch.nn.functional as F
from support.runs import run_train, train_argv

import trainers
from datasets.toolbox import build_transform, read_image
from trainers.engine import get_cfg_default
from trainers.host_api.interface import build_host
from trainers.hosts.coop import CoOp, CoOpCLIP
from trainers.hosts.zsclip import ZeroshotCLIPModel
from trainers.prompted_clip import build_tiny_clip, embed_tokens, tokenize

CLASSNAMES = ["red_circle", "golden retriever", "sea_lion_pup", "x", "traffic_light"]


@pytest.fixture(scope="module")
def clip_model():
    return build_tiny_clip(seed=3)


def coop_cfg(ctx_init="a photo of a", position="end", csc=False, n_ctx=16):
    cfg = trainers.extend_cfg(get_cfg_default())
    node = cfg.TRAINER.COOP
    node.CTX_INIT, node.CLASS_TOKEN_POSITION, node.CSC, node.N_CTX, node.PREC = ctx_init, position, csc, n_ctx, "fp32"
    return node


def images(n=6, size=32, seed=0):
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def with_trainer(args, name):
    args = list(args)
    args[args.index("CoOp")] = name
    return args


# ---- parity with zero-shot CLIP ----------------------------------------------------------------------------


@torch.no_grad()
def test_ctx_init_without_training_equals_zero_shot_clip(clip_model):
    coop = CoOpCLIP(coop_cfg("a photo of a"), CLASSNAMES, clip_model)
    zeroshot = ZeroshotCLIPModel(clip_model, [f"a photo of a {n.replace('_', ' ')}." for n in CLASSNAMES])
    x = images()
    coop_logits, zs_logits = coop(x), zeroshot(x)
    assert coop_logits.shape == (6, len(CLASSNAMES)) and coop_logits.dtype == torch.float32
    assert (coop_logits - zs_logits).abs().max().item() <= 1e-5
    assert coop_logits.std().item() > 1e-2  # the comparison is not between constants


@torch.no_grad()
def test_coop_trainer_equals_zeroshot_trainer(tmp_path, shapes_root, tiny_clip_path):
    """Both trainers on the shapes dataset (class names with underscores), same tiny CLIP, same test batch."""
    coop = run_train("--no-train", *train_argv("CoOp", shapes_root, tiny_clip_path, tmp_path / "coop", subsample="all"))
    zs = run_train("--no-train", *with_trainer(train_argv("CoOp", shapes_root, tiny_clip_path, tmp_path / "zs",
                                                          subsample="all"), "ZeroshotCLIP"))
    assert coop.dm.dataset.classnames == zs.dm.dataset.classnames == [
        "blue_circle", "blue_square", "green_circle", "green_square", "red_circle", "red_square"]
    batch = next(iter(coop.test_loader))
    coop.set_model_mode("eval")
    a, b = coop.model_inference(batch["img"]), zs.model_inference(batch["img"])
    assert a.shape == b.shape == (18, 6)
    assert (a - b).abs().max().item() <= 1e-5


# ---- prompt assembly ---------------------------------------------------------------------------------------


def reordered(init, name, position):
    words, name = init.split(" "), name.replace("_", " ")
    if position == "end":
        return f"{init} {name}."
    if position == "front":
        return f"{name} {init}."
    half = len(words) // 2
    return " ".join(words[:half] + [name] + words[half:]) + "."


@pytest.mark.parametrize("position", ["end", "middle", "front"])
@pytest.mark.parametrize("init", ["a photo of a", "a photo of"])
@torch.no_grad()
def test_class_token_position_orders_tokens(clip_model, position, init):
    """With the context initialised from words, each assembled prompt is the embedding of the reordered text."""
    learner = CoOpCLIP(coop_cfg(init, position), CLASSNAMES, clip_model).prompt_learner
    texts = [reordered(init, name, position) for name in CLASSNAMES]
    if position == "middle":
        assert texts[0] == ("a photo red circle of a." if init == "a photo of a" else "a red circle photo of.")
    tokens = tokenize(texts)
    assert torch.equal(learner(), embed_tokens(clip_model, tokens))
    assert torch.equal(learner.eot_indices(), tokens.argmax(dim=-1))


@pytest.mark.parametrize("position", ["middle", "front"])
@torch.no_grad()
def test_class_specific_random_context_positions(clip_model, position):
    learner = CoOpCLIP(coop_cfg("", position, csc=True, n_ctx=4), CLASSNAMES, clip_model).prompt_learner
    prompts = learner()
    for c, name in enumerate(CLASSNAMES):
        name_tokens = embed_tokens(clip_model, tokenize(name.replace("_", " ")))[0]
        n_name = int(tokenize(name.replace("_", " ")).argmax()) - 1
        name_emb = name_tokens[1:1 + n_name]
        ctx = learner.ctx[c]
        if position == "middle":
            expected = torch.cat([ctx[:2], name_emb, ctx[2:]])
        else:
            expected = torch.cat([name_emb, ctx])
        assert torch.equal(prompts[c, 1:1 + 4 + n_name], expected)
        assert torch.equal(prompts[c, 0], name_tokens[0])  # SOS


def test_context_shapes(clip_model):
    n = len(CLASSNAMES)
    generic = CoOpCLIP(coop_cfg(""), CLASSNAMES, clip_model)
    assert generic.prompt_learner.ctx.shape == (16, 64)
    csc = CoOpCLIP(coop_cfg("", csc=True, n_ctx=3), CLASSNAMES, clip_model)
    assert csc.prompt_learner.ctx.shape == (n, 3, 64)
    with torch.no_grad():
        prompts = csc.prompt_learner()
        assert prompts.shape == (n, 77, 64)
        assert torch.equal(prompts[:, 1:4], csc.prompt_learner.ctx)
        assert csc.encode_text().shape == (n, 32)
        assert csc(images(2)).shape == (2, n)
    # an init phrase fixes the context length and makes the context generic, whatever N_CTX and CSC say
    initialised = CoOpCLIP(coop_cfg("a_photo of a", csc=True, n_ctx=16), CLASSNAMES, clip_model)
    assert initialised.prompt_learner.ctx.shape == (4, 64)
    assert set(initialised.prompt_learner.state_dict()) == {"ctx"}


def test_build_host_freezes_all_but_the_context(clip_model):
    cfg = trainers.extend_cfg(get_cfg_default())
    cfg.TRAINER.COOP.CTX_INIT = "a photo of a"
    model = build_host(CoOp.model_class, cfg, CLASSNAMES, clip_model)
    assert [n for n, p in model.named_parameters() if p.requires_grad] == ["prompt_learner.ctx"]
    assert model.prompt_parameter_names() == ["prompt_learner.ctx"]
    for p in clip_model.parameters():
        p.requires_grad_(True)  # the module-scoped CLIP is shared with other tests


@pytest.mark.parametrize("position,csc", [("end", False), ("middle", True), ("front", False)])
@torch.no_grad()
def test_class_subset_features_are_rows_of_all_features(clip_model, position, csc):
    model = CoOpCLIP(coop_cfg("", position, csc=csc, n_ctx=4), CLASSNAMES, clip_model)
    idx = torch.tensor([4, 0, 2])
    assert torch.allclose(model.encode_text(idx), model.encode_text()[idx], atol=1e-5)
    x = images(3)
    assert torch.allclose(model.logits(x, idx), model.logits(x)[:, idx], atol=1e-5)


# ---- training ----------------------------------------------------------------------------------------------


def fixed_batch_loss(trainer):
    """Cross-entropy on every training image through the (deterministic) test transform."""
    items = trainer.dm.dataset.train_x
    x = torch.stack([build_transform(trainer.cfg, is_train=False)(read_image(d.impath)) for d in items])
    y = torch.tensor([d.label for d in items])
    trainer.set_model_mode("eval")
    with torch.no_grad():
        return F.cross_entropy(trainer.model(x), y).item()


def test_training_lowers_the_loss_and_touches_only_ctx(tmp_path, shapes_root, tiny_clip_path):
    trainer = run_train("--no-train", *train_argv("CoOp", shapes_root, tiny_clip_path, tmp_path / "out", epochs=6,
                                                  subsample="all"))
    frozen = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if n != "prompt_learner.ctx"}
    ctx_before = trainer.model.prompt_learner.ctx.detach().clone()
    before = fixed_batch_loss(trainer)
    trainer.train()
    after = fixed_batch_loss(trainer)
    assert after < before - 0.1, (before, after)
    assert not torch.equal(trainer.model.prompt_learner.ctx, ctx_before)
    for name, param in trainer.model.named_parameters():
        if name != "prompt_learner.ctx":
            assert torch.equal(param, frozen[name]), name


# ---- evaluation from a checkpoint, zero-shot ---------------------------------------------------------------


def test_eval_of_a_missing_epoch_names_the_path_and_the_files(tmp_path, shapes_root, tiny_clip_path):
    base = tmp_path / "base"
    run_train(*train_argv("CoOp", shapes_root, tiny_clip_path, base, epochs=1))
    with pytest.raises(FileNotFoundError) as err:
        run_train("--eval-only", "--model-dir", base, "--load-epoch", 3,
                  *train_argv("CoOp", shapes_root, tiny_clip_path, tmp_path / "new", subsample="new"))
    message = str(err.value)
    assert "model.pth.tar-3" in message and str(base / "prompt_learner") in message
    assert "model.pth.tar-1" in message and "checkpoint" in message  # what is there
    assert not (tmp_path / "new" / "results.json").exists()


def test_zeroshot_eval_only_writes_results(tmp_path, shapes_root, tiny_clip_path):
    out = tmp_path / "zs"
    argv = train_argv("CoOp", shapes_root, tiny_clip_path, out, subsample="all")
    trainer = run_train("--eval-only", *with_trainer(argv, "ZeroshotCLIP"))
    record = json.loads((out / "results.json").read_text())
    assert record["trainer"] == "ZeroshotCLIP" and record["n"] == 18 and record["split"] == "test"
    assert sorted(os.listdir(out)) == [".lock", "log.txt", "results.json"]  # nothing trained, nothing saved
    with torch.no_grad():
        correct = sum(int((trainer.model(b["img"]).argmax(1) == b["label"]).sum()) for b in trainer.test_loader)
    assert record["accuracy"] == pytest.approx(100.0 * correct / 18)
    with pytest.raises(RuntimeError, match="--eval-only"):
        trainer.train()

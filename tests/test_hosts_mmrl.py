"""MMRL and MMRL++: the towers, logits and loss against a direct computation in the reference's order of operations,
the test-time rule, the per-dataset settings, and the reference's command lines."""
import contextlib
import copy
import io
import json
import shlex

import pytest
import torch
import torch.nn.functional as F
from support.hosts import CLASSNAMES, build_host, random_images
from support.records import finished_record
from support.runs import run_train, train_argv

from tools import output_folders as layout
from tools.pipeline import cli as pipeline
from tools.tables import cli as tables
from tools.tables.render import to_markdown
from trainers.engine.config import build_cfg
from trainers.hosts.parts.representation_tokens import CLASS_TOKEN, FUSED, branch_for
from trainers.prompted_clip import build_tiny_clip, tokenize
from trainers.run.config_keys import ConfigError
from trainers.run.record import write_results

MMRL_HOSTS = ("MMRL", "MMRLpp")
NODE = {"MMRL": "MMRL", "MMRLpp": "MMRLpp"}


def four_layer_clip():
    return build_tiny_clip(vision_layers=4, transformer_layers=4)


def causal(length):
    return torch.full((length, length), float("-inf")).triu_(1)


def run_block(block, x, mask=None):
    h = block.ln_1(x)
    x = x + block.attn(h, h, h, need_weights=False, attn_mask=mask)[0]
    return x + block.mlp(block.ln_2(x))


def with_tokens(x, layer, layers, tokens, beta):
    """Sequence-first x with the layer's tokens after position 0: inserted at the first layer, then replaced (MMRL)
    or blended with what the previous block made of them (MMRL++)."""
    if layer not in layers:
        return x
    n, index = tokens[0].shape[0], layers.index(layer)
    new = tokens[index].expand(x.shape[1], -1, -1).permute(1, 0, 2)
    if index == 0:
        return torch.cat([x[:1], new, x[1:]])
    if beta is not None:
        new = beta * new + (1 - beta) * x[1:1 + n]
    return torch.cat([x[:1], new, x[1 + n:]])


def direct_text(clip_model, tokenized, layers, tokens, beta):
    """All 77 positions, the causal mask rebuilt for the longer sequence, EOT read n positions later."""
    x = (clip_model.token_embedding(tokenized) + clip_model.positional_embedding).permute(1, 0, 2)
    for depth, block in enumerate(clip_model.transformer.resblocks):
        x = with_tokens(x, depth + 1, layers, tokens, beta)
        x = run_block(block, x, causal(x.shape[0]))
    x = clip_model.ln_final(x.permute(1, 0, 2))
    return x[torch.arange(len(x)), tokenized.argmax(-1) + tokens[0].shape[0]] @ clip_model.text_projection


def direct_image(clip_model, images, layers, tokens, beta, rep_projection):
    v = clip_model.visual
    x = v.conv1(images).flatten(2).permute(0, 2, 1)
    x = torch.cat([v.class_embedding.expand(len(x), 1, -1), x], dim=1) + v.positional_embedding
    x = v.ln_pre(x).permute(1, 0, 2)
    for depth, block in enumerate(v.transformer.resblocks):
        x = run_block(block, with_tokens(x, depth + 1, layers, tokens, beta))
    x = x.permute(1, 0, 2)
    n = tokens[0].shape[0]
    return v.ln_post(x[:, 0]) @ v.proj, v.ln_post(x[:, 1:1 + n]).mean(1) @ rep_projection


def reference_layer_tokens(learner):
    """The reference's learner forward: once per step, layer by layer, the text map then the image map."""
    text, vision = [], []
    for index in range(len(learner.rep_layers)):
        text.append(learner.to_text(learner.compound_rep_tokens, index).type(learner.dtype))
        vision.append(learner.to_vision(learner.compound_rep_tokens, index).type(learner.dtype))
    return text, vision


def direct_outputs(model, clip_model, images, labels, beta, zs_text):
    """The reference's CustomCLIP forward and MMRL_Loss, written out: (logits, rep logits, fused, loss)."""
    learner = model.prompt_learner
    text_tokens, vision_tokens = reference_layer_tokens(learner)
    layers = learner.rep_layers
    tokenized = tokenize([f"a photo of a {name.replace('_', ' ')}." for name in CLASSNAMES])
    text = direct_text(clip_model, tokenized, layers, text_tokens, beta)  # the text tower first, as there
    image, rep = direct_image(clip_model, images, layers, vision_tokens, beta,
                              learner.rep_projection(clip_model.visual.proj))
    image, rep, text = (t / t.norm(dim=-1, keepdim=True) for t in (image, rep, text))
    logits, rep_logits = 100. * image @ text.t(), 100. * rep @ text.t()
    fused = 0.7 * logits + 0.3 * rep_logits
    zs_image = clip_model.encode_image(images)
    zs_image = zs_image / zs_image.norm(dim=-1, keepdim=True)
    loss = (0.7 * F.cross_entropy(logits, labels) + 0.3 * F.cross_entropy(rep_logits, labels)
            + 1.0 * (1 - F.cosine_similarity(image, zs_image, dim=1).mean())
            + 1.0 * (1 - F.cosine_similarity(text, zs_text, dim=1).mean()))
    return logits, rep_logits, fused, loss


@pytest.mark.parametrize("parity", [True, False])
@pytest.mark.parametrize("layers", ["[2, 4]", "[1, 3, 4]"])
@pytest.mark.parametrize("host", MMRL_HOSTS)
def test_logits_loss_and_gradients_follow_the_reference_order(host, layers, parity):
    """On shared weights in fp32: under MODEL.REFERENCE_PARITY bit for bit, logits, loss and every gradient; the
    fast mode (text cut after EOT, the maps built per tower) to rounding. A gap in REP_LAYERS keeps the tokens;
    layer 1 inserts before block 0."""
    clip_model = four_layer_clip()
    model = build_host(host, f"TRAINER.{NODE[host]}.REP_LAYERS", layers, "MODEL.REFERENCE_PARITY", parity,
                       clip_model=clip_model)
    with torch.no_grad():  # MMRL++'s residuals start at zero: move them, so that each layer's map differs
        for name, p in model.prompt_learner.named_parameters():
            if name.endswith(".B") or name == "proj_rep_B":
                p.normal_(std=0.05)
    beta = 0.9 if host == "MMRLpp" else None
    images, labels = random_images(), torch.tensor([0, 1, 3])
    zs_text = model.text_targets
    expected = direct_outputs(model, clip_model, images, labels, beta, zs_text)
    loss = model.loss(images, labels)
    model.prompt_learner.eval()
    model.test_branch = CLASS_TOKEN
    close = {"rtol": 0, "atol": 0} if parity else {"rtol": 2e-6, "atol": 1e-5}
    torch.testing.assert_close(model.logits(images), expected[0], **close)
    model.test_branch = FUSED
    torch.testing.assert_close(model.logits(images), expected[2], **close)
    torch.testing.assert_close(loss.logits, expected[2], **close)
    torch.testing.assert_close(loss.total, expected[3], **close)
    ours = torch.autograd.grad(loss.total, list(model.prompt_learner.parameters()))
    theirs = torch.autograd.grad(expected[3], list(model.prompt_learner.parameters()))
    for name, a, b in zip(dict(model.prompt_learner.named_parameters()), ours, theirs):
        if parity:
            assert torch.equal(a, b), f"{name}: {(a - b).abs().max().item():.1e}"
        else:
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=name)


@torch.no_grad()
@pytest.mark.parametrize("host", MMRL_HOSTS)
def test_the_head_fuses_while_training_and_follows_the_test_rule_after(host):
    model = build_host(host)
    images = random_images()
    features, text = model.encode_image(images), model.encode_text()
    logits, rep_logits, _, _ = model.branch_logits(features, text)
    assert not torch.allclose(logits, rep_logits)
    model.prompt_learner.train()
    assert torch.equal(model.head(features, text), 0.7 * logits + 0.3 * rep_logits)
    model.prompt_learner.eval()
    assert model.test_branch == CLASS_TOKEN  # cpu_tiny: TASK B2N, all classes
    assert torch.equal(model.head(features, text), logits)


def rule(task, subsample="base", dataset="Shapes"):
    cfg = build_cfg(opts=["TASK", task, "DATASET.SUBSAMPLE_CLASSES", subsample, "DATASET.NAME", dataset])
    return branch_for(cfg)


def test_the_reference_test_rule():
    assert rule("B2N", "base") == FUSED and rule("B2N", "new") == CLASS_TOKEN and rule("B2N", "all") == CLASS_TOKEN
    assert rule("FS", "all") == FUSED and rule("FS", "new") == FUSED
    assert rule("CD", "all", "ImageNet") == FUSED and rule("CD", "all", "EuroSAT") == CLASS_TOKEN
    with pytest.raises(ValueError, match="TASK must be one of B2N, FS, CD"):
        rule("XD")


def host_cfg_for(host, dataset, *opts):
    return build_cfg([f"configs/datasets/{dataset}.yaml", f"configs/trainers/{host}/vit_b16.yaml"], opts, trainer=host)


def test_per_dataset_settings_come_between_the_files_and_the_options():
    eurosat = host_cfg_for("MMRL", "eurosat", "TASK", "B2N").TRAINER.MMRL
    assert (eurosat.REP_DIM, eurosat.REG_WEIGHT) == (2048, 0.01)
    assert host_cfg_for("MMRL", "stanford_cars").TRAINER.MMRL.REG_WEIGHT == 7.0
    assert host_cfg_for("MMRL", "eurosat", "TRAINER.MMRL.REP_DIM", 512).TRAINER.MMRL.REP_DIM == 512  # options win
    assert host_cfg_for("MMRL", "eurosat", "TASK", "CD").TRAINER.MMRL.REP_DIM == 2048  # one table for every task
    pets = host_cfg_for("MMRLpp", "oxford_pets", "TASK", "B2N").TRAINER.MMRLpp
    assert (pets.BETA, pets.REG_WEIGHT) == (0.7, 0.01)
    pets = host_cfg_for("MMRLpp", "oxford_pets", "TASK", "CD").TRAINER.MMRLpp
    assert (pets.BETA, pets.REG_WEIGHT) == (0.6, 1.0)  # the cross-dataset table sets BETA only
    assert host_cfg_for("MMRLpp", "imagenet_a", "TASK", "CD").TRAINER.MMRLpp.BETA == 0.8
    # DPC over the host applies the host's table (before its options); other trainers are untouched.
    dpc = build_cfg(["configs/datasets/eurosat.yaml", "configs/trainers/DPC/vit_b16_ep20_batch4.yaml"],
                    ["TRAINER.DPC.HOST", "MMRLpp", "TASK", "CD"], trainer="DPC").TRAINER.MMRLpp
    assert (dpc.BETA, dpc.REG_WEIGHT) == (0.3, 1.0)
    assert build_cfg(["configs/datasets/eurosat.yaml"], trainer="DPC").TRAINER.MMRL.REP_DIM == 512  # no host
    assert build_cfg(["configs/datasets/eurosat.yaml"], trainer="CoOp").TRAINER.MMRL.REP_DIM == 512


def test_empty_or_unordered_rep_layers_are_refused():
    with pytest.raises(ValueError, match="REP_LAYERS is empty"):
        build_host("MMRL", "TRAINER.MMRL.REP_LAYERS", "[]")
    with pytest.raises(ValueError, match=r"increasing layer numbers within 1\.\.2"):
        build_host("MMRLpp", "TRAINER.MMRLpp.REP_LAYERS", "[2, 1]")
    with pytest.raises(ValueError, match=r"within 1\.\.2"):
        build_host("MMRL", "TRAINER.MMRL.REP_LAYERS", "[1, 3]")


# The reference's scripts/mmrl/*.sh and scripts/mmrlpp/*.sh steps (one seed), with the tiny CPU config and the
# generated shapes dataset in place of ViT-B/16 and its datasets, and no data-loader worker processes.
def reference_steps(host, data, out, clip_path):
    common = ["--root", data, "--seed", 1, "--trainer", host, "--dataset-config-file", "configs/datasets/shapes.yaml",
              "--config-file", f"configs/trainers/{host}/cpu_tiny.yaml"]
    tail = ["MODEL.BACKBONE.NAME", clip_path, "DATALOADER.NUM_WORKERS", 0, "OPTIM.MAX_EPOCH", 1]
    train_dir = out / "base2new/train_base/shapes/shots_4" / host / "cpu_tiny/seed1"
    return {
        "base2new_train": [*common, "--output-dir", train_dir, "DATASET.NUM_SHOTS", 4,
                           "DATASET.SUBSAMPLE_CLASSES", "base", "TASK", "B2N", *tail],
        "base2new_test": [*common, "--output-dir", out / "base2new/test_new/shapes/shots_4" / host / "cpu_tiny/seed1",
                          "--model-dir", train_dir, "--eval-only", "DATASET.NUM_SHOTS", 4,
                          "DATASET.SUBSAMPLE_CLASSES", "new", "TASK", "B2N", *tail],
        "few_shot": [*common, "--output-dir", out / "few_shot/shapes/shots_2" / host / "cpu_tiny/seed1",
                     "DATASET.NUM_SHOTS", 2, "TASK", "FS", *tail],
        "cross_datasets_train": [*common, "--output-dir", out / "xd" / host, "DATASET.NUM_SHOTS", 4,
                                 f"TRAINER.{NODE[host]}.REG_WEIGHT", 0.2, "TASK", "CD", *tail],
        # MMRL's test script repeats REG_WEIGHT and its REP_DIM (512 there, the tiny config's 16 here)
        "cross_datasets_test": [*common, "--output-dir", out / "xd_test" / host, "--model-dir", out / "xd" / host,
                                "--eval-only", "DATASET.NUM_SHOTS", 4,
                                *((f"TRAINER.{NODE[host]}.REG_WEIGHT", 0.2, f"TRAINER.{NODE[host]}.REP_DIM", 16)
                                  if host == "MMRL" else ()), "TASK", "CD", *tail],
    }


@pytest.mark.slow
@pytest.mark.parametrize("host", MMRL_HOSTS)
def test_the_reference_command_lines_run_unchanged(host, tmp_path, shapes12, tiny_clip_path):
    data = shapes12
    steps = reference_steps(host, data, tmp_path, tiny_clip_path)
    trained = run_train(*steps["base2new_train"])
    assert trained.model.test_branch == FUSED  # base classes: the fused logits
    tested = run_train(*steps["base2new_test"])
    assert tested.model.test_branch == CLASS_TOKEN  # new classes: the class-token logits
    for key, value in trained.model.prompt_learner.state_dict().items():
        assert torch.equal(tested.model.prompt_learner.state_dict()[key], value)
    result = json.loads((tmp_path / "base2new/test_new/shapes/shots_4" / host / "cpu_tiny/seed1/results.json")
                        .read_text())
    assert result["subsample_classes"] == "new" and result["n"] == 18
    assert run_train(*steps["few_shot"]).model.test_branch == FUSED
    cross = run_train(*steps["cross_datasets_train"])
    assert cross.model.test_branch == CLASS_TOKEN and getattr(cross.cfg.TRAINER, NODE[host]).REG_WEIGHT == 0.2
    target = run_train(*steps["cross_datasets_test"])  # not ImageNet: the class-token logits
    assert target.model.test_branch == CLASS_TOKEN
    assert json.loads((tmp_path / "xd_test" / host / "results.json").read_text())["subsample_classes"] == "all"


# ---- the benchmarks ----------------------------------------------------------------------------------------

def planned(*argv):
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        assert pipeline.main([*argv, "--dry-run", "--no-progress"]) == 0
    return [shlex.split(line) for line in text.getvalue().splitlines() if line.startswith("python train.py")]


def opt(argv, key):
    return argv[argv.index(key) + 1] if key in argv else None


@pytest.mark.slow
@pytest.mark.parametrize("host", MMRL_HOSTS)
def test_the_pipeline_lists_the_whole_tables(host, tmp_path):
    root, out = str(tmp_path / "data"), str(tmp_path / "out")
    b2n = planned("--host", host, "--root", root, "--out", out)
    assert len(b2n) == 11 * 3 * 4 and not (tmp_path / "out").exists()
    configs = {opt(c, "--dataset-config-file"): opt(c, "--config-file") for c in b2n if opt(c, "--trainer") == host}
    assert configs["configs/datasets/imagenet.yaml"] == f"configs/trainers/{host}/vit_b16_imagenet.yaml"
    assert configs["configs/datasets/eurosat.yaml"] == f"configs/trainers/{host}/vit_b16.yaml"
    assert {opt(c, "TASK") for c in b2n} == {None}  # B2N, the default
    cross = planned("--host", host, "--mode", "cross-dataset", "--root", root, "--out", out)
    assert len(cross) == 2 * 3 * (1 + 10) and {opt(c, "TASK") for c in cross} == {"CD"}
    if host == "MMRL":  # its scripts keep REP_DIM 512 on every target (EuroSAT's 2048 is for base-to-new)
        assert {opt(c, "TRAINER.MMRL.REP_DIM") for c in cross} == {"512"}
    few = planned("--host", host, "--mode", "few-shot", "--root", root, "--out", out, "--datasets", "imagenet", "dtd")
    assert len(few) == 2 * 5 * 3 * 2 and {opt(c, "TASK") for c in few} == {"FS"}
    configs = {opt(c, "--dataset-config-file"): opt(c, "--config-file") for c in few if opt(c, "--trainer") == host}
    assert configs == {"configs/datasets/imagenet.yaml": f"configs/trainers/{host}/vit_b16_imagenet.yaml",
                       "configs/datasets/dtd.yaml": f"configs/trainers/{host}/vit_b16_few_shot.yaml"}


def test_the_table_shows_mmrl_and_mmrl_dpc_and_says_the_paper_has_no_numbers(tmp_path):
    for method, base, new in (("MMRL", 80.0, 70.0), ("DPC_MMRL", 84.0, 70.0)):
        for phase, accuracy, subsample in (("train", base, "base"), ("test", new, "new")):
            directory = layout.run_dir(str(tmp_path), layout.BASE2NEW, phase, "caltech101", 16, method, "cfg", 1)
            write_results(directory, finished_record(accuracy, "Caltech101", 1, subsample, num_shots=16))
    report = tables.make_report(tmp_path)
    notes = {t["method"]: t["paper_note"] for t in report["tables"]}
    assert set(notes) == {"MMRL", "DPC_MMRL"}
    assert notes["DPC_MMRL"] == ("No paper numbers for MMRL+DPC: the paper tables this project carries have none "
                                 "for it.")
    text = to_markdown(report)
    assert "No paper numbers for MMRL+DPC:" in text and "No paper numbers for MMRL:" in text


# ---- DPC over MMRL: the prompt values are DPC's, the branch is the host's rule ------------------------------

def host_under(trainer, weight):
    """A copy of the trainer's host holding ``weight * P' + (1 - weight) * P``, in evaluation mode."""
    host = copy.deepcopy(trainer.host)
    with torch.no_grad():
        for name, value in trainer.prompts.mixed(weight).items():
            host.get_parameter(name).copy_(value)
    return host.eval()


@pytest.mark.slow
@pytest.mark.parametrize("host", MMRL_HOSTS)
def test_dpc_routes_the_prompts_and_the_host_rule_picks_the_branch(host, tmp_path, shapes12, tiny_clip_path):
    data = shapes12
    stage1 = tmp_path / "stage1"
    run_train(*train_argv(host, data, tiny_clip_path, stage1))

    def dpc(out, *opts, flags=(), subsample="base"):
        return run_train(*train_argv("DPC", data, tiny_clip_path, out, "TRAINER.DPC.BASE_PROMPT", "mixed",
                                     "TRAINER.DPC.WEIGHT_BASE", 0.3, "TRAINER.DPC.WEIGHT_NEW", 0.1, *opts, flags=flags,
                                     subsample=subsample, epochs=1, print_freq=None))

    base = dpc(tmp_path / "dpc", "TRAINER.DPC.BACKBONE_DIR", str(stage1))
    new = dpc(tmp_path / "dpc_new", flags=("--eval-only", "--model-dir", tmp_path / "dpc", "--load-epoch", 1),
              subsample="new")
    assert base.host.test_branch == FUSED and new.host.test_branch == CLASS_TOKEN
    for trainer, weight in ((base, 0.3), (new, 0.1)):  # the paper's omega_b mix on base classes, omega_n on new
        images = first_test_images(trainer)
        with torch.no_grad():
            torch.testing.assert_close(trainer.inference_logits(images), host_under(trainer, weight)(images),
                                       rtol=0, atol=1e-5)
            assert not torch.allclose(trainer.inference_logits(images), host_under(trainer, 0.0)(images))
    # Hard negatives are ranked by the host's own head under P, as it trains: the fused logits.
    images = first_test_images(base)
    base.set_model_mode("train")
    frozen = host_under(base, 0.0)
    frozen.prompt_learner.train()
    with torch.no_grad():
        scores, _ = base.score(images)
        torch.testing.assert_close(scores, frozen(images), rtol=0, atol=1e-5)
        features, text = frozen.encode_image(images), frozen.encode_text()
        torch.testing.assert_close(scores, frozen.fuse(*frozen.branch_logits(features, text)[:2]), rtol=0, atol=1e-5)


def first_test_images(trainer):
    return trainer.parse_batch_test(next(iter(trainer.test_loader)))[0]


def test_a_checkpoint_of_another_rep_dim_names_the_key(tmp_path, shapes_root, tiny_clip_path):
    run_train(*train_argv("MMRL", shapes_root, tiny_clip_path, tmp_path / "run", epochs=1))
    evaluate = ("--eval-only", "--model-dir", tmp_path / "run", "--load-epoch", 1)
    with pytest.raises(ConfigError, match=r"TRAINER\.MMRL\.REP_DIM \(8 here, 16 there\)"):
        run_train(*train_argv("MMRL", shapes_root, tiny_clip_path, tmp_path / "new", "TRAINER.MMRL.REP_DIM", 8,
                              subsample="new", flags=evaluate))

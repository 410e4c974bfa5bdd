"""PromptKD: the KD loss, the frozen teacher, the reference's checkpoints, base-to-new data, DPC over PromptKD
(its prompt set across two models, the teacher's negatives, omega_n = 0) and resume. The student is the tests'
tiny CLIP (width 64, embedding 32); the teacher a wider one (96, embedding 48, ``promptkd_support.py``)."""
import glob
import json
import math
import os

import pytest
import torch
from support.dassl_saved import dassl_training_state
from support.hosts import build_host, random_images
from support.promptkd import TEACHER_CLIP
from support.runs import run_train, run_train_interrupted, train_argv
from torch import nn

from trainers import extend_cfg
from trainers.dpc.negatives import select_negatives
from trainers.dpc.prompts import DualPrompts
from trainers.engine import get_cfg_default
from trainers.engine.clip_trainer import ClipTrainer
from trainers.engine.config import build_cfg
from trainers.hosts.promptkd import kd_loss
from trainers.run.checkpoints import load_checkpoint
from trainers.run.config_keys import ConfigError

pytestmark = pytest.mark.usefixtures("promptkd_teacher")  # PromptKD's tests need its teacher

DPC_CPU_YAML = "configs/trainers/DPC/cpu_tiny.yaml"


# ---- the loss ---------------------------------------------------------------------------------------------

def test_kd_loss_matches_a_hand_computation():
    student = [[1.0, 2.0, 0.5], [0.1, -1.0, 3.0]]
    teacher = [[2.0, 0.0, 1.0], [1.5, 1.5, -0.5]]
    temperature = 2.0
    total = 0.0
    for s_row, t_row in zip(student, teacher):
        s_exp = [math.exp(v / temperature) for v in s_row]
        t_exp = [math.exp(v / temperature) for v in t_row]
        q = [v / sum(s_exp) for v in s_exp]
        p = [v / sum(t_exp) for v in t_exp]
        total += sum(pi * (math.log(pi) - math.log(qi)) for pi, qi in zip(p, q))
    expected = total * temperature ** 2 / 6  # summed over B x C = 6 elements, divided by 6, times T^2
    got = kd_loss(torch.tensor(student), torch.tensor(teacher), temperature)
    assert got.item() == pytest.approx(expected, rel=1e-6)
    assert kd_loss(torch.tensor(teacher), torch.tensor(teacher), temperature).item() == pytest.approx(0, abs=1e-7)


def test_host_loss_is_the_weighted_kd_of_student_against_teacher_logits():
    model = build_host("PromptKD", "TRAINER.PROMPTKD.KD_WEIGHT", 1000.0, "TRAINER.PROMPTKD.TEMPERATURE", 2.0)
    model.prompt_learner.eval()
    images = random_images()
    with torch.no_grad():
        loss = model.loss(images, torch.tensor([0, 1, 2]))
        teacher = model.teacher
        text = teacher.encode_text()
        teacher_logits = teacher.logit_scale.exp() * nn.functional.normalize(teacher.encode_image(images), dim=-1) \
            @ nn.functional.normalize(text, dim=-1).t()
        student = nn.functional.normalize(model.encode_image(images), dim=-1)
        student_logits = model.logit_scale.exp() * student @ nn.functional.normalize(text, dim=-1).t()
    assert student.shape == (3, TEACHER_CLIP["embed_dim"])  # projected from the student's 32 to the teacher's 48
    torch.testing.assert_close(loss.logits, student_logits, rtol=0, atol=1e-5)
    expected = 1000.0 * kd_loss(student_logits, teacher_logits, 2.0)
    assert loss.total.item() == pytest.approx(expected.item(), rel=1e-5) and loss.total.item() > 0


# ---- the teacher ------------------------------------------------------------------------------------------

def test_teacher_is_frozen_in_eval_mode_and_out_of_the_optimizer_and_checkpoints(tmp_path, shapes_root,
                                                                                 tiny_clip_path):
    trainer = run_train(*train_argv("PromptKD", shapes_root, tiny_clip_path, tmp_path / "run", epochs=1,
                                    flags=("--no-train",)))
    model, teacher = trainer.model, trainer.model.teacher
    calls = []
    original = teacher.encode_text
    teacher.encode_text = lambda *args: calls.append(args) or original(*args)
    trainer.train()
    assert len(calls) == 1  # the teacher's text features: once for the run (training and the final test)
    for mode in (True, False, True):
        model.train(mode)
        trainer.set_model_mode("train" if mode else "eval")
        assert not any(m.training for m in teacher.modules())  # eval mode, whatever is asked
    assert model.prompt_learner.projector[1].training  # the student's BatchNorm does follow
    assert all(not p.requires_grad and p.grad is None for p in teacher.parameters())
    optimised = {id(p) for group in trainer.optim.param_groups for p in group["params"]}
    assert optimised == {id(p) for p in model.prompt_learner.parameters()}
    assert not optimised & {id(p) for p in teacher.parameters()}
    saved = load_checkpoint(str(tmp_path / "run" / "VLPromptLearner" / "model.pth.tar-1"))
    assert set(saved["state_dict"]) == set(model.prompt_learner.state_dict())  # no teacher tensor
    assert len(saved["optimizer"]["state"]) == len(list(model.prompt_learner.parameters()))


def test_a_missing_teacher_is_a_two_line_error():
    with pytest.raises(FileNotFoundError) as error:
        build_host("PromptKD", "TRAINER.PROMPTKD.TEACHER_DIR", "/nowhere/teacher")
    lines = str(error.value).splitlines()
    assert len(lines) == 2 and "TRAINER.PROMPTKD.TEACHER_DIR" in lines[0] and "/nowhere/teacher" in lines[0]
    assert "VLPromptLearner" in lines[1]


def test_the_teacher_backbone_is_the_recorded_one_or_a_one_line_error():
    model = build_host("PromptKD", "TRAINER.PROMPTKD.TEACHER_NAME", "")  # "": what the teacher run records
    assert model.teacher.embed_dim == TEACHER_CLIP["embed_dim"]
    with pytest.raises(ConfigError, match=r"TEACHER_NAME is 'ViT-L/14', but the teacher .* was trained on"):
        build_host("PromptKD", "TRAINER.PROMPTKD.TEACHER_NAME", "ViT-L/14")


def reference_teacher_state(ours):
    """Our PromptSRC prompt-learner state as the reference saves a whole PromptSRC model (fp16, with junk)."""
    state = {}
    for name, value in ours.items():
        if name == "ctx":
            key = "prompt_learner.ctx"
        elif name == "vision_ctx":
            key = "image_encoder.VPT"
        else:
            tower, k = name.split(".")
            encoder = "text_encoder" if tower == "deep_text" else "image_encoder"
            key = f"{encoder}.transformer.resblocks.{int(k) + 1}.VPT_shallow"
        state[key] = value.half()
    width = TEACHER_CLIP["transformer_width"]
    state.update({"prompt_learner.token_prefix": torch.zeros(10, 1, width), "logit_scale": torch.tensor(4.6),
                  "image_encoder.conv1.weight": torch.zeros(width, 3, 8, 8),
                  "prompt_learner.ZS_image_encoder.conv1.weight": torch.zeros(width, 3, 8, 8)})
    return state


def test_teacher_loads_from_the_promptkd_release_layout(tmp_path, promptkd_teacher):
    ours = load_checkpoint(promptkd_teacher["run"] + "/VLPromptLearner/model.pth.tar-1")["state_dict"]
    release = tmp_path / "teacher_model"
    folder = release / "ImageFolder" / "VLPromptLearner"  # <dir>/<DATASET.NAME>/VLPromptLearner/
    folder.mkdir(parents=True)
    torch.save({"state_dict": reference_teacher_state(ours), "epoch": 20, **dassl_training_state(ours.values())},
               folder / "model-best.pth.tar")
    model = build_host("PromptKD", "TRAINER.PROMPTKD.TEACHER_DIR", str(release), "DATASET.NAME", "ImageFolder")
    loaded = model.teacher.prompt_learner.state_dict()
    assert set(loaded) == set(ours)
    for name, value in ours.items():
        assert torch.equal(loaded[name], value.half().float()), name
    ours_model = build_host("PromptKD")  # the same prompts from our own run: the same text features up to fp16
    torch.testing.assert_close(model.encode_text(), ours_model.encode_text(), rtol=0, atol=5e-3)


def test_reference_student_projector_computes_as_the_reference_convolutions():
    model = build_host("PromptKD")
    student_dim, teacher_dim = 32, TEACHER_CLIP["embed_dim"]
    torch.manual_seed(3)
    convs = nn.Sequential(nn.Conv2d(student_dim, teacher_dim, 1), nn.BatchNorm2d(teacher_dim), nn.ReLU(),
                          nn.Conv2d(teacher_dim, teacher_dim, 1))
    with torch.no_grad():
        convs[1].running_mean.normal_()
        convs[1].running_var.uniform_(0.5, 2.0)
        convs[1].weight.normal_()
    state = {f"VPT_image_trans.conv1.{k}": v for k, v in convs.state_dict().items()}
    state["image_encoder.VPT"] = torch.randn(4, 64)
    state["image_encoder.transformer.resblocks.1.VPT_shallow"] = torch.randn(4, 64)
    state["image_encoder.conv1.weight"] = torch.zeros(64, 3, 8, 8)  # frozen weights the reference also saves
    ClipTrainer.load_learnable_state(model.prompt_learner, model.adapt_state_dict(state))
    assert torch.equal(model.prompt_learner.vision_ctx, state["image_encoder.VPT"])
    features = torch.randn(5, student_dim)
    for train in (False, True):  # running statistics, then batch statistics
        convs.train(train)
        model.prompt_learner.train(train)
        with torch.no_grad():
            reference = convs(features[:, :, None, None]).flatten(1)
            torch.testing.assert_close(model.prompt_learner.project(features), reference, rtol=1e-5, atol=1e-5)


# ---- base-to-new, DPC over PromptKD, resume ---------------------------------------------------------------

@pytest.fixture(scope="module")
def runs(tmp_path_factory, shapes12, tiny_clip_path):
    """The session's 12 classes (6 base, 6 new): PromptKD trained for 2 epochs, DPC over it for 1 epoch."""
    tmp = tmp_path_factory.mktemp("promptkd")
    root = shapes12
    stage1 = tmp / "stage1"
    host = run_train(*train_argv("PromptKD", root, tiny_clip_path, stage1))
    stage2 = tmp / "dpc"
    dpc = run_dpc(root, tiny_clip_path, stage2, "TRAINER.DPC.BACKBONE_DIR", str(stage1))
    return {"tmp": tmp, "root": root, "clip": tiny_clip_path, "stage1": stage1, "host": host, "stage2": stage2,
            "dpc": dpc}


def run_dpc(root, clip_path, out, *opts, trainer="DPC", config=DPC_CPU_YAML, flags=(), subsample="base"):
    return run_train(*train_argv(trainer, root, clip_path, out, *opts, flags=flags, subsample=subsample, epochs=1,
                                 config_file=config, print_freq=None))


@pytest.mark.slow
def test_base_to_new_trains_on_all_classes_unlabeled_and_evaluates_the_base_classes(runs):
    host = runs["host"]
    assert len(host.dm.dataset.classnames) == 12  # the model: all classes
    assert {item.label for item in host.dm.dataset.train_x} == set(range(12))
    assert len(host.dm.dataset.train_x) == 12 * 5  # every training image of the split (UNLABELED_SHOTS -1), not 4
    assert host.cfg.DATASET.NUM_SHOTS == 4 and host.cfg.DATASET.SUBSAMPLE_CLASSES == "base"  # as the run was given
    record = json.loads((runs["stage1"] / "results.json").read_text())
    assert record["subsample_classes"] == "base" and record["n"] == 18  # 6 base classes x 3 test images
    images = host.parse_batch_test(next(iter(host.test_loader)))[0]
    with torch.no_grad():
        torch.testing.assert_close(host.model_inference(images), host.model.logits(images)[:, :6], rtol=0, atol=1e-5)


def test_cross_mode_trains_on_the_classes_and_shots_it_is_given(tmp_path, shapes_root, tiny_clip_path):
    trainer = run_train(*train_argv("PromptKD", shapes_root, tiny_clip_path, tmp_path, "TRAINER.MODAL", "cross",
                                    epochs=1))  # base classes, 4 shots: no all-class unlabeled set in this mode
    assert trainer.eval_classes is None and len(trainer.dm.dataset.classnames) == 3
    assert len(trainer.dm.dataset.train_x) == 3 * 4
    record = json.loads((tmp_path / "results.json").read_text())
    assert record["subsample_classes"] == "base" and record["n"] == 9


@pytest.mark.slow
def test_dpc_prompt_set_spans_student_and_teacher(runs):
    dpc = runs["dpc"]
    host, prompts = dpc.host, dpc.prompts
    names = prompts.names
    assert names[:len(host.prompt_parameter_names())] == host.prompt_parameter_names()  # what stage 1 trains ...
    extra = names[len(host.prompt_parameter_names()):]  # ... and what only DPC clones
    assert extra == ["prompt_learner.projector.1.running_mean", "prompt_learner.projector.1.running_var",
                     "teacher.prompt_learner.ctx", "teacher.prompt_learner.deep_text.0"]
    frozen, parallel = prompts.frozen(), prompts.parallel_values()
    teacher_own = dict(host.teacher.named_parameters())
    for name in ("prompt_learner.ctx", "prompt_learner.deep_text.0"):
        assert torch.equal(frozen["teacher." + name], teacher_own[name])  # P = the teacher's prompts ...
        assert not torch.equal(parallel["teacher." + name], teacher_own[name])  # ... P' trained away from them
        assert parallel["teacher." + name].requires_grad and not teacher_own[name].requires_grad
    stats = "prompt_learner.projector.1.running_mean"
    assert not torch.equal(parallel[stats], frozen[stats])  # P''s BatchNorm statistics moved in DPC's training
    assert all(p.grad is None for p in host.teacher.parameters())


@pytest.mark.slow
def test_dpc_negatives_come_from_the_teacher_over_the_base_classes(runs):
    dpc = runs["dpc"]
    dpc.negative_pool = dpc.build_negative_pool()
    batch = next(iter(dpc.train_loader_x.loader))
    images, labels = dpc.parse_batch_train(batch)
    scores, anchors = dpc.score(images)
    assert anchors is None and scores.shape == (len(labels), 6)  # the base classes DPC trains on
    with torch.no_grad():
        torch.testing.assert_close(scores, dpc.host.teacher_logits(images), rtol=0, atol=0)
        assert not torch.allclose(scores, dpc.frozen_host.logits(images), atol=1e-3)  # not P's scores
    torch.manual_seed(0)
    step = dpc.choose_negatives(dpc.score_batch(batch)).collect()
    torch.manual_seed(0)
    expected = select_negatives(scores.cpu(), labels.cpu(), dpc.dpc_cfg.TOPK, dpc.dpc_cfg.MIN_NEGATIVES,
                                available=dpc.negative_pool.classes)
    assert step.negative_classes == [c for sample in expected for c in sample]
    assert all(0 <= c < 6 for c in step.negative_classes)
    dpc.negative_pool.close()


@pytest.mark.slow
def test_new_class_logits_at_weight_new_zero_are_promptkds(runs):
    tmp, root, clip_path = runs["tmp"], runs["root"], runs["clip"]
    host_new = run_train(*train_argv("PromptKD", root, clip_path, tmp / "host_new", subsample="new",
                                     flags=("--eval-only", "--model-dir", runs["stage1"], "--load-epoch", 2)))
    flags = ("--eval-only", "--model-dir", runs["stage2"], "--load-epoch", 1)
    dpc_new = run_dpc(root, clip_path, tmp / "dpc_new", flags=flags, subsample="new")
    dpc_half = run_dpc(root, clip_path, tmp / "dpc_half", "TRAINER.DPC.WEIGHT_NEW", 0.5, flags=flags,
                       subsample="new")
    images = host_new.parse_batch_test(next(iter(host_new.test_loader)))[0]
    with torch.no_grad():
        promptkd = host_new.model_inference(images)
        assert promptkd.shape[1] == 6
        assert torch.equal(dpc_new.inference_logits(images), promptkd)
        assert not torch.allclose(dpc_half.inference_logits(images), promptkd, atol=1e-4)
    for run in ("host_new", "dpc_new"):
        assert json.loads((tmp / run / "results.json").read_text())["subsample_classes"] == "new"


def test_weight_new_zero_keeps_the_batchnorm_statistics_of_p():
    model = build_host("PromptKD")
    prompts = DualPrompts(model)
    model.prompt_learner.eval()
    images = random_images()
    with torch.no_grad():
        before = model.logits(images)
        model.prompt_learner.train()  # P' forwards in training mode: its running statistics move
        prompts.view(prompts.parallel_values()).logits(random_images(seed=1))
        model.prompt_learner.eval()
        assert not torch.equal(model.logits(images), before)
        assert torch.equal(prompts.view(prompts.mixed(0.0)).logits(images), before)


@pytest.mark.slow
def test_reference_command_line_for_dpc_over_promptkd_runs(runs, tmp_path, capsys):
    """A yaml and keys as the released code's StackSPLE_PromptKD configs write them."""
    config = tmp_path / "sple_promptkd.yaml"
    config.write_text(
        "DATALOADER:\n  TRAIN_X:\n    BATCH_SIZE: 4\n  TEST:\n    BATCH_SIZE: 32\n  NUM_WORKERS: 0\n"
        "INPUT:\n  SIZE: (32, 32)\n"
        "OPTIM:\n  NAME: sgd\n  LR: 0.002\n  MAX_EPOCH: 1\n  LR_SCHEDULER: cosine\n"
        "TEST:\n  FINAL_MODEL: best_val\n"
        "TRAINER:\n  MODAL: base2novel\n  PROMPTKD:\n    N_CTX_VISION: 4\n    N_CTX_TEXT: 4\n"
        "    CTX_INIT: a photo of a\n    PREC: fp16\n    PROMPT_DEPTH_VISION: 2\n    PROMPT_DEPTH_TEXT: 2\n"
        "    PROJECT_LAYER: 2\n    CE_WEIGHT: 0.0\n    KD_WEIGHT: 1.0\n"
        "SPLE:\n  SPLE_TRAINER:\n    SPLE_INIT: True\n    SPLE_BASE_TRAIN: True\n  BACK_CKPT_EPOCH: 2\n"
        "  INFER_TOPK: 8\n  INFER_NONREPEAT: True\n  LOSS_KD_WEIGHT: 1.0\n"
        "  STACK:\n    MODE: loop+converse\n    WEIGHT: 0.2\n    LOOP_DEPTH: 0\n")
    out = tmp_path / "sple"
    trainer = run_dpc(runs["root"], runs["clip"], out, "SPLE.BACK_CKPT_PATH", str(runs["stage1"]),
                      trainer="StackSPLE_PromptKD", config=str(config))  # the teacher: as stage 1 records it
    log = capsys.readouterr().out
    assert "TRAINER.DPC.HOST PromptKD" in log and "SPLE.STACK.MODE='loop+converse'" in log
    assert trainer.dpc_cfg.BASE_PROMPT == "parallel" and trainer.dpc_cfg.BACKBONE_EPOCH == 2
    record = json.loads((out / "results.json").read_text())
    assert record["trainer"] == "StackSPLE_PromptKD" and record["subsample_classes"] == "base"


@pytest.mark.slow
def test_the_reference_readmes_three_steps_run_over_promptkd(runs, tmp_path):
    """Step 2 (DPC, base classes, val split) and step 3 (the same command with new classes and the test split, no
    --eval-only) as the released code's README writes them, with its config path; step 3 gives PromptKD's
    new-class accuracy (omega_n = 0)."""
    out = tmp_path / "dpc"
    step = ["--config-file", "configs/trainers/SPLE/PromptKD/vit_b16_c2_ep20_batch4_4+4ctx.yaml",
            "SPLE.BACK_CKPT_PATH", str(runs["stage1"]), "SPLE.BACK_CKPT_EPOCH", 2, "SPLE.STACK.MODE", "loop+converse",
            "SPLE.STACK.WEIGHT", 0.2, "SPLE.STACK.WEIGHT_FOR_NEW", 0.0, "DATALOADER.NUM_WORKERS", 0]
    run_dpc(runs["root"], runs["clip"], out, *step[2:], "TEST.SPLIT", "val", trainer="StackSPLE_PromptKD",
            config=step[1])
    run_dpc(runs["root"], runs["clip"], out, *step[2:], "TEST.SPLIT", "test", trainer="StackSPLE_PromptKD",
            config=step[1], subsample="new")
    run_train(*train_argv("PromptKD", runs["root"], runs["clip"], tmp_path / "host_new", subsample="new",
                          flags=("--eval-only", "--model-dir", runs["stage1"], "--load-epoch", 2)))
    base = json.loads((out / "results.json").read_text())
    new = json.loads((out / "eval_new_test" / "results.json").read_text())
    assert base["subsample_classes"] == "base" and new["subsample_classes"] == "new"
    promptkd = json.loads((tmp_path / "host_new" / "results.json").read_text())
    assert new["accuracy"] == promptkd["accuracy"] and new["n"] == promptkd["n"] == 18


@pytest.mark.slow
def test_resume_after_interruption_matches_an_uninterrupted_run(tmp_path, shapes_root, tiny_clip_path):
    def args(out):
        return train_argv("PromptKD", shapes_root, tiny_clip_path, out, "OPTIM.LR", 0.05, epochs=3)

    def final_state(out):
        return load_checkpoint(str(out / "VLPromptLearner" / "model.pth.tar-3"))["state_dict"]

    run_train(*args(tmp_path / "uninterrupted"))
    reference = final_state(tmp_path / "uninterrupted")
    run_train_interrupted(2, *args(tmp_path / "interrupted"))
    resumed = run_train(*args(tmp_path / "interrupted"))
    assert resumed.start_epoch == 2
    state = final_state(tmp_path / "interrupted")
    assert set(state) == set(reference) and "projector.1.running_var" in state
    for name, value in reference.items():
        assert torch.equal(state[name], value), name
    assert reference["projector.1.running_mean"].abs().sum() > 0  # the statistics were trained and restored too



# The reference code's configs/trainers/SPLE/PromptKD/*.yaml: (batch, LR, epochs, INFER_TOPK, STACK.WEIGHT,
# TEST.FINAL_MODEL).
REFERENCE_SPLE_PROMPTKD = {
    "vit_b16_c2_ep20_batch4_4+4ctx": (4, 0.002, 20, 8, 0.2, "best_val"),
    "vit_b16_c2_ep10_batch4_4+4ctx": (4, 0.0035, 10, 8, 0.2, "best_val"),
    "vit_b16_c2_ep10_batch4_4+4ctx_lr26_cross_datasets": (4, 0.0026, 10, 8, 0.2, "last_step"),
    "vit_b16_c2_ep20_batch2_top2_4+4ctx": (2, 0.002, 20, 2, 0.2, "best_val"),
    "vit_b16_c2_ep20_batch2_top8_4+4ctx": (2, 0.002, 20, 8, 0.2, "best_val"),
}


def test_the_reference_sple_promptkd_config_paths_build_their_values():
    shipped = {os.path.basename(p)[:-5] for p in glob.glob("configs/trainers/SPLE/PromptKD/*.yaml")}
    assert shipped == set(REFERENCE_SPLE_PROMPTKD)
    defaults = extend_cfg(get_cfg_default()).TRAINER.PROMPTKD
    for name, expected in REFERENCE_SPLE_PROMPTKD.items():
        cfg = build_cfg([f"configs/trainers/SPLE/PromptKD/{name}.yaml"], trainer="StackSPLE_PromptKD")
        dpc = cfg.TRAINER.DPC
        assert (cfg.DATALOADER.TRAIN_X.BATCH_SIZE, cfg.OPTIM.LR, cfg.OPTIM.MAX_EPOCH, dpc.TOPK, dpc.WEIGHT_BASE,
                cfg.TEST.FINAL_MODEL) == expected, name
        assert dpc.HOST == "PromptKD" and cfg.TRAINER.PROMPTKD == defaults  # the PromptKD run's settings apply

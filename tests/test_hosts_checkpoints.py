"""Loading checkpoints written by the reference implementations (whole-model state dicts)."""
import json

import pytest
import torch
from support.dassl_saved import dassl_training_state
from support.hosts import HOSTS
from support.runs import run_train, train_argv

# Frozen tensors a reference whole-model checkpoint also holds (any values: they must be ignored).
pytestmark = pytest.mark.usefixtures("promptkd_teacher")  # HOSTS include PromptKD

FROZEN_WHOLE_MODEL = {
    "image_encoder.conv1.weight": (64, 3, 8, 8),
    "image_encoder.transformer.resblocks.0.attn.in_proj_weight": (192, 64),
    "text_encoder.positional_embedding": (77, 64),
    "text_encoder.ln_final.weight": (64,),
    "logit_scale": (),
    "prompt_learner.token_prefix": (10, 1, 64),  # another class count: must be dropped, not loaded
    "prompt_learner.token_suffix": (10, 72, 64),
}


def reference_name(host, ours):
    """Our key -> the reference's key."""
    if host in ("IVLP", "PromptSRC"):
        if ours == "ctx":
            return "prompt_learner.ctx"
        if ours == "vision_ctx":
            return "image_encoder.VPT"
        tower, k = ours.split(".")
        encoder = "text_encoder" if tower == "deep_text" else "image_encoder"
        return f"{encoder}.transformer.resblocks.{int(k) + 1}.VPT_shallow"
    if host == "PromptKD":  # the whole student: its vision prompts, and the projector as 1x1 convolutions
        if ours == "vision_ctx":
            return "image_encoder.VPT"
        if ours.startswith("deep_vision."):
            return f"image_encoder.transformer.resblocks.{int(ours.split('.')[1]) + 1}.VPT_shallow"
        return "VPT_image_trans.conv1." + ours[len("projector."):]
    if host in ("MMRL", "MMRLpp"):  # the whole CustomCLIP: the learner, and the learned image projection
        image = {"proj_rep": "proj_rep", "proj_rep_A": "A", "proj_rep_B": "B"}
        return f"image_encoder.{image[ours]}" if ours in image else f"representation_learner.{ours}"
    return f"prompt_learner.{ours}" if host == "MaPLe" else ours


def reference_shape(host, ours, value):
    """The reference's PromptKD projector is made of 1x1 convolutions: (out, in, 1, 1) weights."""
    is_conv = host == "PromptKD" and ours.startswith("projector.") and ours.endswith("weight") and value.dim() == 2
    return value[:, :, None, None] if is_conv else value


def reference_state(host, ours):
    """A reference-layout state dict (fp16, as the reference saves) holding new values for our tensors."""
    g = torch.Generator().manual_seed(7)
    values = {name: torch.randn(t.shape, generator=g).half() for name, t in ours.items()}
    state = {reference_name(host, name): reference_shape(host, name, value) for name, value in values.items()}
    junk = dict(FROZEN_WHOLE_MODEL) if host in ("IVLP", "PromptSRC", "MaPLe", "PromptKD") else {
        "token_prefix": (10, 1, 64), "token_suffix": (10, 72, 64)}
    if host == "PromptSRC":
        junk["prompt_learner.ZS_image_encoder.conv1.weight"] = (64, 3, 8, 8)
    if host in ("MMRL", "MMRLpp"):
        junk = {**FROZEN_WHOLE_MODEL, "prompt_embeddings": (10, 77, 64), "image_encoder.proj": (64, 32)}
    if host == "KgCoOp":
        junk.update({"bias_vectors": (1, 64), "meta_net.linear1.weight": (64, 64), "meta_net.linear1.bias": (64,),
                     "token_midfix": (10, 3, 64)})
    state.update({key: torch.randn(shape, generator=g).half() for key, shape in junk.items()})
    return state, values


def write_reference_checkpoint(directory, name, state, epoch=5):
    path = directory / name / f"model.pth.tar-{epoch}"
    path.parent.mkdir(parents=True)
    # as Dassl saves it: the optimiser's and the warm-up scheduler's states too (a scheduler object inside)
    extras = dassl_training_state([t for t in state.values() if t.is_floating_point()][:2])
    torch.save({"state_dict": state, "epoch": epoch, **extras, "val_result": None}, path)
    (directory / name / "checkpoint").write_text(f"model.pth.tar-{epoch}\n")


@pytest.mark.parametrize("host", HOSTS)
def test_reference_checkpoint_loads_into_the_prompts(host, tmp_path, shapes_root, tiny_clip_path):
    trainer = run_train(*train_argv(host, shapes_root, tiny_clip_path, tmp_path / "run", flags=("--no-train",)))
    module = trainer.model.prompt_learner
    state, values = reference_state(host, module.state_dict())
    write_reference_checkpoint(tmp_path / "reference", trainer.registered_name, state)
    trainer.load_model(str(tmp_path / "reference"), epoch=5)
    for name, tensor in module.state_dict().items():
        assert torch.equal(tensor, values[name].to(tensor.dtype)), name


def test_reference_checkpoint_evaluates_through_train_py(tmp_path, shapes_root, tiny_clip_path):
    probe = run_train(*train_argv("MaPLe", shapes_root, tiny_clip_path, tmp_path / "probe", flags=("--no-train",)))
    state, values = reference_state("MaPLe", probe.model.prompt_learner.state_dict())
    write_reference_checkpoint(tmp_path / "reference", "MultiModalPromptLearner", state)
    trainer = run_train(*train_argv("MaPLe", shapes_root, tiny_clip_path, tmp_path / "new", subsample="new",
                                    flags=("--eval-only", "--model-dir", tmp_path / "reference", "--load-epoch", 5)))
    assert torch.equal(trainer.model.prompt_learner.proj.weight, values["proj.weight"].float())
    assert json.loads((tmp_path / "new" / "results.json").read_text())["n"] == 9


def test_reference_checkpoint_of_another_depth_is_refused(tmp_path, shapes_root, tiny_clip_path):
    trainer = run_train(*train_argv("IVLP", shapes_root, tiny_clip_path, tmp_path / "run", flags=("--no-train",)))
    state, _ = reference_state("IVLP", trainer.model.prompt_learner.state_dict())
    state["text_encoder.transformer.resblocks.2.VPT_shallow"] = torch.zeros(2, 64).half()  # depth 3, not 2
    write_reference_checkpoint(tmp_path / "reference", "VLPromptLearner", state)
    with pytest.raises(KeyError, match="deep_text.1"):
        trainer.load_model(str(tmp_path / "reference"), epoch=5)

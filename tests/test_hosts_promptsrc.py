"""PromptSRC: GPA weights, the loss terms, the frozen targets, and GPA through training and resume."""
import clip
import pytest
import torch
import torch.nn.functional as F
from support.hosts import CLASSNAMES, build_host, random_images
from support.runs import run_train, train_argv

from trainers.hosts.parts.gpa import gaussian_weights
from trainers.hosts.promptsrc import promptsrc_losses, promptsrc_total
from trainers.prompted_clip import build_tiny_clip, tokenize
from trainers.prompted_clip.templates import PROMPTSRC_TEMPLATES
from trainers.run.checkpoints import load_checkpoint


def test_gpa_weights_match_the_reference_numbers():
    weights = gaussian_weights(15, 1, 20)
    assert sum(weights) == pytest.approx(1.0)
    expected = [1.49e-6, 1.34e-4, 4.43e-3, 0.0540, 0.2420, 0.3989, 0.2420, 0.0540, 4.43e-3, 1.34e-4, 1.49e-6]
    assert weights[9:20] == pytest.approx(expected, rel=5e-3)  # epochs 10..20
    assert max(weights[:9]) < 1e-8
    flat = gaussian_weights(6, 10, 20)
    assert flat[0] == pytest.approx(0.0554, abs=1e-4) and flat[19] == pytest.approx(0.0236, abs=1e-4)
    assert max(flat) == pytest.approx(0.0628, abs=1e-4) and flat.index(max(flat)) == 5
    with pytest.raises(ValueError, match="GPA_STD"):
        gaussian_weights(15, 0, 20)


def test_loss_terms_against_a_direct_computation():
    g = torch.Generator().manual_seed(0)
    logits, zs_logits = torch.randn(3, 5, generator=g) * 4, torch.randn(3, 5, generator=g) * 4
    labels = torch.tensor([1, 4, 0])
    t, targets = torch.randn(5, 8, generator=g), torch.randn(5, 8, generator=g)
    f, z = torch.randn(3, 8, generator=g), torch.randn(3, 8, generator=g)
    terms = promptsrc_losses(logits, labels, t, targets, f, z, zs_logits, 25, 10)

    log_q = logits - logits.exp().sum(1, keepdim=True).log()
    assert terms["ce"].item() == pytest.approx(-log_q[torch.arange(3), labels].mean().item(), rel=1e-6)
    assert terms["text"].item() == pytest.approx(25 * (t - targets).abs().mean().item(), rel=1e-6)
    assert terms["image"].item() == pytest.approx(10 * (f - z).abs().mean().item(), rel=1e-6)
    p = zs_logits.softmax(1)
    kl = (p * (p.log() - log_q)).sum() / 15  # summed over every element, divided by B * n_cls
    assert terms["kl"].item() == pytest.approx(kl.item(), rel=1e-5)
    total = terms["ce"] + (terms["kl"] + terms["text"] + terms["image"])
    assert torch.equal(promptsrc_total(terms), total)


@torch.no_grad()
def test_targets_are_the_fp32_mean_of_60_raw_template_features():
    half = build_tiny_clip()
    clip.model.convert_weights(half)
    model = build_host("PromptSRC", clip_model=half)
    targets = model.text_targets
    assert targets.dtype == torch.float32 and targets.shape == (len(CLASSNAMES), 32)
    reference = build_tiny_clip()  # the fp32 CLIP the reference builds: the same fp16-valued weights, .float()
    clip.model.convert_weights(reference)
    reference.float()
    names = [n.replace("_", " ") for n in CLASSNAMES]
    raw = torch.stack([reference.encode_text(tokenize([t.replace("{}", n) for n in names]))
                       for t in PROMPTSRC_TEMPLATES], dim=1)  # (n_cls, 60, E), not normalised
    torch.testing.assert_close(targets, raw.mean(dim=1), rtol=0, atol=1e-5)
    assert all(p.dtype == torch.float16 for p in half.transformer.parameters() if p.dim() == 2)  # host untouched


@torch.no_grad()
def test_model_feeds_zero_shot_targets_to_the_loss():
    clip_model = build_tiny_clip()
    model = build_host("PromptSRC", clip_model=clip_model)
    images, labels = random_images(), torch.tensor([0, 1, 3])
    loss = model.loss(images, labels)
    terms, logits = loss.terms, loss.logits
    zs_image = F.normalize(clip_model.encode_image(images), dim=-1)  # the stock, unprompted image tower
    targets = F.normalize(model.text_targets, dim=-1)
    zs_logits = clip_model.logit_scale.exp() * zs_image @ targets.t()
    f = F.normalize(model.encode_image(images), dim=-1)
    t = F.normalize(model.encode_text(), dim=-1)
    expected = promptsrc_losses(logits, labels, t, targets, f, zs_image, zs_logits, 25, 10)
    for name in ("ce", "kl", "text", "image"):
        torch.testing.assert_close(terms[name], expected[name], rtol=1e-5, atol=1e-6)
    assert torch.equal(loss.total, promptsrc_total(terms))


class Interrupted(Exception):
    pass


def promptsrc_trainer(root, clip_path, out, *flags):
    return run_train(*train_argv("PromptSRC", root, clip_path, out, "TRAINER.PROMPTSRC.GPA_MEAN", 2,
                                 epochs=3, flags=flags))


def learnable(trainer):
    return {n: p.detach().clone() for n, p in trainer.model.prompt_learner.named_parameters()}


def test_gpa_loads_the_weighted_sum_and_survives_resume(tmp_path, shapes_root, tiny_clip_path):
    trainer = promptsrc_trainer(shapes_root, tiny_clip_path, tmp_path / "full", "--no-train")
    snapshots, add = [], trainer.gpa.add
    trainer.gpa.add = lambda epoch, tensors: (snapshots.append({n: t.detach().clone() for n, t in tensors}),
                                              add(epoch, tensors))
    trainer.train()
    weights = gaussian_weights(2, 1, 3)
    final = learnable(trainer)
    for name, value in final.items():
        expected = sum(w * s[name] for w, s in zip(weights, snapshots))
        torch.testing.assert_close(value, expected, rtol=0, atol=1e-7)
        assert not torch.equal(value, snapshots[-1][name])  # not simply the last epoch's prompts
    saved = load_checkpoint(str(tmp_path / "full" / "VLPromptLearner" / "model.pth.tar-3"))
    assert all(torch.equal(saved["state_dict"][n], v) for n, v in final.items())  # the GPA model is saved
    assert saved["gpa"]["epochs_added"] == 3

    interrupted = promptsrc_trainer(shapes_root, tiny_clip_path, tmp_path / "resumed", "--no-train")
    run_epoch = interrupted.run_epoch

    def stop_at_third_epoch():
        if interrupted.epoch == 2:
            raise Interrupted
        run_epoch()
    interrupted.run_epoch = stop_at_third_epoch
    with pytest.raises(Interrupted):
        interrupted.train()
    resumed = promptsrc_trainer(shapes_root, tiny_clip_path, tmp_path / "resumed")
    assert resumed.start_epoch == 2 and resumed.gpa.epochs_added == 3
    for name, value in learnable(resumed).items():
        torch.testing.assert_close(value, final[name], rtol=0, atol=1e-7)

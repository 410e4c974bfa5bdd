"""DPC's HOST_LOSS_WEIGHT term reuses the step's features: the same objective as encoding the anchors again."""
import pytest
import torch
from support.runs import COOP_CPU_YAML, run_train, train_argv
from test_dpc import dpc

from trainers.dpc.loss import batch_classes, symmetric_infonce


@pytest.fixture(scope="module")
def stage2(tmp_path_factory, shapes12, coop_stage1, tiny_clip_path):
    """A DPC trainer over a CoOp (the session's) or a 1-epoch KgCoOp stage 1, not trained, and one of its prepared
    steps."""
    tmp = tmp_path_factory.mktemp("host_loss")

    def build(host):
        stage1 = coop_stage1
        if host != "CoOp":
            stage1 = tmp / host
            run_train(*train_argv(host, shapes12, tiny_clip_path, stage1, config_file=COOP_CPU_YAML, epochs=1,
                                  print_freq=None))
        trainer = dpc(shapes12, tiny_clip_path, tmp / f"dpc_{host}", "TRAINER.DPC.BACKBONE_DIR", stage1,
                      "TRAINER.DPC.HOST", host, "TRAINER.DPC.HOST_LOSS_WEIGHT", 0.7, flags=("--no-train",))
        trainer.negative_pool = trainer.build_negative_pool()
        torch.manual_seed(0)
        batch, _ = next(iter(trainer.train_loader_x))
        return trainer, trainer.choose_negatives(trainer.score_batch(batch)).collect()

    return build


def encoding_the_anchors_again(trainer, step):
    """The objective as it was first written: DHNO's loss, plus the host's loss on the anchors from scratch."""
    images, labels = step.contrastive_batch()
    classes, targets = batch_classes(labels)
    parallel = trainer.prompts.view(trainer.prompts.parallel_values())
    features = trainer.contrastive_image_features(parallel, images, step.anchor_features)
    dhno = symmetric_infonce(parallel.logits(images, classes, image_features=features), targets)
    return dhno + 0.7 * trainer.host.loss(step.images, step.labels).total


def loss_and_gradient(trainer, objective):
    params = trainer.prompts.parallel_parameters()
    loss = objective()
    return loss.detach(), torch.autograd.grad(loss, params)


@pytest.mark.parametrize("host", ["CoOp", "KgCoOp"])
def test_host_loss_term_equals_encoding_the_anchors_again(stage2, host):
    trainer, step = stage2(host)
    assert trainer.host_loss_reuses_features and len(step.negative_classes) > 0
    images, labels = step.contrastive_batch()
    if hasattr(trainer.host, "handcrafted_text_features"):
        trainer.host.handcrafted_text_features  # KgCoOp's frozen targets, encoded once on first use
    calls = {"image": 0, "text": 0}

    def counter(name):
        return lambda *_: calls.__setitem__(name, calls[name] + 1)

    hooks = [trainer.host.image_encoder.register_forward_hook(counter("image")),
             trainer.host.text_encoder.register_forward_hook(counter("text"))]
    new_loss, new_grad = loss_and_gradient(
        trainer, lambda: trainer.dhno_loss(images, labels, step.anchor_features, num_anchors=len(step.labels)))
    for hook in hooks:
        hook.remove()
    assert calls == {"image": 1, "text": 1}  # the negatives' images and all classes' text, once each
    old_loss, old_grad = loss_and_gradient(trainer, lambda: encoding_the_anchors_again(trainer, step))
    assert torch.allclose(new_loss, old_loss, rtol=1e-6, atol=1e-7)
    for new, old in zip(new_grad, old_grad):
        assert old.abs().max() > 0
        assert torch.allclose(new, old, rtol=1e-4, atol=1e-6), (new - old).abs().max()

"""DPC's step order: the next step's negatives are chosen (a wait for the device on CUDA) only once this step's
loss and backward are launched, and the random draws keep the order of choosing before the step trains."""
import torch

import trainers.dpc.trainer as dpc_trainer_module
from test_dpc_host_loss import stage2  # noqa: F401  (the fixture)


def test_next_negatives_are_chosen_after_this_step_is_launched(stage2, monkeypatch):  # noqa: F811
    trainer, _ = stage2("CoOp")
    events = []
    select = dpc_trainer_module.select_negatives
    backward = trainer.backward_and_update
    monkeypatch.setattr(dpc_trainer_module, "select_negatives",
                        lambda *a, **k: events.append("choose") or select(*a, **k))
    monkeypatch.setattr(trainer, "backward_and_update", lambda *a, **k: events.append("backward") or backward(*a, **k))
    trainer.set_model_mode("train")
    trainer.batch_idx, trainer.num_batches = 0, 10 ** 9
    steps = iter(trainer.train_loader_x)
    for _ in range(3):
        step = next(steps)
        assert step.negative_classes is not None and step.following.negative_classes is None
        trainer.forward_backward(step)
        assert step.following.negative_classes is not None
    assert events == ["choose", "backward", "choose", "backward", "choose", "backward", "choose"]


def test_choosing_later_draws_the_same_negatives(stage2):  # noqa: F811
    """Steps consumed without training (choices made as the loader goes) and with training between them agree."""
    trainer, _ = stage2("CoOp")
    trainer.set_model_mode("train")
    trainer.batch_idx, trainer.num_batches = 0, 10 ** 9
    torch.manual_seed(5)
    eager = [step.negative_classes for step, _ in zip(trainer.train_loader_x, range(4))]
    torch.manual_seed(5)
    trained = []
    for step, _ in zip(trainer.train_loader_x, range(4)):
        trained.append(step.negative_classes)
        trainer.forward_backward(step)
    assert trained == eager and any(trained)

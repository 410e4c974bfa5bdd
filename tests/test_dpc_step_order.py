"""DPC's step order: the next step's negatives are chosen (a wait for the device on CUDA) only once this step's
loss and backward are launched, and the random draws keep the order of choosing before the step trains."""
import torch
from test_dpc_host_loss import stage2  # noqa: F401  (the fixture)

import trainers.dpc.trainer as dpc_trainer_module


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
    batches = iter(trainer.train_loader_x)
    for i in range(3):
        batch, upcoming = next(batches)
        assert (trainer.ahead is None) == (i == 0)  # step i's negatives were chosen while step i-1 ran
        trainer.forward_backward((batch, upcoming))
        assert torch.equal(trainer.ahead.batch.labels, upcoming["label"].to(trainer.device))  # step i+1, chosen
    assert events == ["choose", "backward", "choose", "backward", "choose", "backward", "choose"]


def test_choosing_later_draws_the_same_negatives(stage2, monkeypatch):  # noqa: F811
    """Negatives chosen right after each batch is scored, without training, and chosen as training goes (after
    each step's backward) agree: training draws nothing from the random generators in between."""
    trainer, _ = stage2("CoOp")
    trainer.set_model_mode("train")
    trainer.batch_idx, trainer.num_batches = 0, 10 ** 9
    torch.manual_seed(5)
    eager = []
    for i, (batch, upcoming) in zip(range(4), trainer.train_loader_x):
        for scored in ([batch] if i == 0 else []) + ([upcoming] if upcoming is not None else []):
            ahead = trainer.choose_negatives(trainer.score_batch(scored))
            ahead.collect()
            eager.append(ahead.negative_classes)
    torch.manual_seed(5)
    trained = []  # every step's negatives, in the order they are chosen
    choose = trainer.choose_negatives
    monkeypatch.setattr(trainer, "choose_negatives", lambda scored: trained.append(choose(scored)) or trained[-1])
    for _, batches in zip(range(4), trainer.train_loader_x):
        trainer.forward_backward(batches)
    assert [ahead.negative_classes for ahead in trained] == eager and any(eager)

"""Training you can watch: a line at least every 30 s of training, TensorBoard events with Dassl's tags under
both runtimes, and an ETA (the run's and the pipeline bar's) that counts only the work still to do."""
import io
import re

import pytest
from support.runs import run_train, train_argv

from tools.pipeline.progress import RunsProgress
from trainers.engine.epoch import remaining_batches, run_epoch

TRAINING_LINE = re.compile(r"epoch \[(\d+)/(\d+)\] batch \[(\d+)/(\d+)\] .* eta (\S+)")


class FakeClock:
    """Time that moves only when a batch trains."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class FakeTrainer:
    """What ``run_epoch`` uses of a trainer: ``batches`` batches that each take ``seconds`` of the fake clock."""

    def __init__(self, clock, batches, seconds, print_freq, epoch=0, max_epoch=1):
        self.clock, self.seconds = clock, seconds
        self.train_loader_x = list(range(batches))
        self.cfg = type("Cfg", (), {"TRAIN": type("Train", (), {"PRINT_FREQ": print_freq})})
        self.epoch, self.max_epoch = epoch, max_epoch
        self.scalars = []

    def set_model_mode(self, mode):
        pass

    def forward_backward(self, batch):
        self.clock.now += self.seconds
        return {"loss": 1.0 / (batch + 1)}

    def get_current_lr(self):
        return 0.002

    def write_scalar(self, tag, value, step):
        self.scalars.append((tag, step))


def training_lines(text):
    return [match.groups() for match in TRAINING_LINE.finditer(text)]


def test_a_line_at_least_every_30_seconds_of_training(capsys):
    clock = FakeClock()
    run_epoch(FakeTrainer(clock, batches=20, seconds=12, print_freq=16), clock=clock)
    printed = [int(batch) for _, _, batch, _, _ in training_lines(capsys.readouterr().out)]
    assert printed == [3, 6, 9, 12, 15, 16, 19]  # every 36 s at most (30 s reached in the 3rd batch), and batch 16
    clock = FakeClock()
    run_epoch(FakeTrainer(clock, batches=20, seconds=0.1, print_freq=16), clock=clock)
    assert [int(line[2]) for line in training_lines(capsys.readouterr().out)] == [16]  # a fast epoch: as in Dassl


def test_the_eta_after_a_resume_counts_only_the_remaining_batches(capsys):
    assert remaining_batches(batch_idx=3, num_batches=10, epoch=2, max_epoch=4) == 6 + 10
    clock = FakeClock()
    trainer = FakeTrainer(clock, batches=10, seconds=2, print_freq=5, epoch=2, max_epoch=4)  # resumed at epoch 3
    run_epoch(trainer, clock=clock)
    lines = training_lines(capsys.readouterr().out)
    assert [(line[0], line[2], line[4]) for line in lines] == [("3", "5", "0:00:30"), ("3", "10", "0:00:20")]
    assert ("train/loss", 29) in trainer.scalars and ("train/lr", 20) in trainer.scalars  # Dassl's steps


def test_the_pipeline_bar_leaves_runs_finished_before_out_of_its_rate():
    text = io.StringIO()
    bar = RunsProgress(10, lambda: [], lambda run: "", file=text)
    try:
        bar.settled_without_running(8)  # a resumed plan: 8 of its 10 runs finished earlier
        assert (bar.bar.n, bar.bar.total) == (0, 2)
        bar.update(1)
        assert bar.bar.format_dict["n"] == 1 and bar.bar.format_dict["total"] == 2
    finally:
        bar.close()
    assert "8 settled without running" in text.getvalue() and "1/2" in text.getvalue()


def test_tensorboard_events_hold_dassls_loss_and_accuracy_tags(tmp_path, shapes_root, tiny_clip_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "coop"
    trainer = run_train(*train_argv("CoOp", shapes_root, tiny_clip_path, out, epochs=2))
    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/loss", "train/acc", "train/lr", "test/accuracy"} <= tags, tags
    assert len(events.Scalars("train/loss")) == 2 * trainer.num_batches  # one per batch of the 2 epochs
    assert 0 <= events.Scalars("test/accuracy")[-1].value <= 100


def test_without_tensorboard_the_events_are_skipped_in_one_line(tmp_path, monkeypatch, capsys):
    import sys

    from trainers.engine.runtime.trainer import open_summary_writer

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if tensorboard were not installed
    assert open_summary_writer(str(tmp_path / "tensorboard")) is None
    assert capsys.readouterr().out == ("TensorBoard events skipped: the tensorboard package is not installed "
                                       "(pip install tensorboard)\n")

"""One training epoch, the same under Dassl and the built-in runtime: Dassl's ``TrainerX`` loop, its training
line and its TensorBoard tags (``train/<loss name>``, ``train/lr`` per batch), with one addition: a line at least
every ``PRINT_SECONDS`` of training, not only every ``TRAIN.PRINT_FREQ`` batches, so that a long epoch (the demo's
DPC config prints once per 128-batch epoch) is never minutes of silence.

The ETA is the mean batch time of this epoch times the batches this run still has to train: the rest of this
epoch and the epochs after it. After a resume the epochs already trained are not counted, and the epoch's first
batches (the resumed run's slow start included) are averaged over as in Dassl.
"""
import datetime
import time

from trainers.engine import AverageMeter, MetricMeter

PRINT_SECONDS = 30


def remaining_batches(batch_idx, num_batches, epoch, max_epoch):
    """Batches still to train after batch ``batch_idx`` (0-based) of epoch ``epoch`` (0-based) of ``max_epoch``."""
    return num_batches - batch_idx - 1 + (max_epoch - epoch - 1) * num_batches


def eta_text(seconds_per_batch, remaining):
    return str(datetime.timedelta(seconds=int(seconds_per_batch * remaining)))


def run_epoch(trainer, print_seconds=PRINT_SECONDS, clock=time.time):
    """``TrainerX.run_epoch`` for ``trainer`` (a ``ClipTrainer``); see above."""
    trainer.set_model_mode("train")
    losses, batch_time, data_time = MetricMeter(), AverageMeter(), AverageMeter()
    trainer.num_batches = len(trainer.train_loader_x)
    print_freq = trainer.cfg.TRAIN.PRINT_FREQ
    end = last_line = clock()
    for trainer.batch_idx, batch in enumerate(trainer.train_loader_x):
        data_time.update(clock() - end)
        loss_summary = trainer.forward_backward(batch)
        batch_time.update(clock() - end)
        losses.update(loss_summary)
        now = clock()
        if ((trainer.batch_idx + 1) % print_freq == 0 or trainer.num_batches < print_freq
                or now - last_line >= print_seconds):
            remaining = remaining_batches(trainer.batch_idx, trainer.num_batches, trainer.epoch, trainer.max_epoch)
            print(f"epoch [{trainer.epoch + 1}/{trainer.max_epoch}] "
                  f"batch [{trainer.batch_idx + 1}/{trainer.num_batches}] "
                  f"time {batch_time.val:.3f} ({batch_time.avg:.3f}) "
                  f"data {data_time.val:.3f} ({data_time.avg:.3f}) "
                  f"{losses} lr {trainer.get_current_lr():.4e} eta {eta_text(batch_time.avg, remaining)}")
            last_line = now
        n_iter = trainer.epoch * trainer.num_batches + trainer.batch_idx
        for name, meter in losses.meters.items():
            trainer.write_scalar("train/" + name, meter.avg, n_iter)
        trainer.write_scalar("train/lr", trainer.get_current_lr(), n_iter)
        end = clock()

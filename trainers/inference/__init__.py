"""Using a finished run: ``load_run`` rebuilds its host (or DPC over it) from the run's own record and checkpoint,
with no dataset and no config file, and returns a ``TunedClassifier`` for any images and class names."""
from trainers.inference.classifier import TunedClassifier
from trainers.inference.finished_run import FinishedRun, read_finished_run


def load_run(model_dir, epoch=None, device=None, backbone=None):
    """The classifier of the finished run in ``model_dir`` (its checkpoint of ``epoch``; by default the one its
    evaluation used). ``backbone``: where the run's CLIP weights are, when not where the run read them (the
    same file; other weights are refused). ``device``: CUDA when available."""
    return TunedClassifier(read_finished_run(model_dir, epoch, backbone), device)


__all__ = ["FinishedRun", "TunedClassifier", "load_run", "read_finished_run"]

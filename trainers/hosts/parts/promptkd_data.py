"""PromptKD's base-to-new data: the student learns from the unlabeled training images of *all* classes.

With ``TRAINER.MODAL base2novel`` and ``DATASET.SUBSAMPLE_CLASSES base`` (the base-to-new training run):
- the model is built for all classes and trained on the training images of all of them (``UNLABELED_SHOTS`` per
  class, -1 = every image, as the reference), whose labels the loss never reads;
- evaluation (the final test and ``TEST.FINAL_MODEL best_val``'s selection) is on the base classes, with the
  logits of the base classes only: base = the first ceil(n/2) labels, as in every base-to-new split.
An evaluation on the new classes (``SUBSAMPLE_CLASSES new``) and the cross-dataset mode are ordinary runs.
"""
import torch

from datasets.image_errors import NamingDatasetWrapper
from datasets.toolbox import DataManager
from trainers.run import distributed


def trains_on_all_classes(cfg):
    return cfg.TRAINER.MODAL == "base2novel" and cfg.DATASET.SUBSAMPLE_CLASSES == "base"


class UnlabeledAllClassData:
    """Mixin for a ``ClipTrainer``: the data above. ``eval_classes`` are the logits' columns an evaluation keeps."""

    eval_classes = None

    def build_data_loader(self):
        super().build_data_loader()  # the base classes: their test and val images, labelled 0..nb-1
        if not trains_on_all_classes(self.cfg):
            return
        base_classes = self.dm.num_classes
        cfg = self.cfg.clone()
        cfg.defrost()
        cfg.DATASET.SUBSAMPLE_CLASSES = "all"
        cfg.DATASET.NUM_SHOTS = self.cfg.TRAINER.PROMPTKD.UNLABELED_SHOTS
        cfg.freeze()
        everything = DataManager(cfg, dataset_wrapper=NamingDatasetWrapper)
        names = everything.dataset.classnames
        if list(names[:base_classes]) != list(self.dm.dataset.classnames):
            raise ValueError("The base classes are not the first classes of the whole dataset; PromptKD's "
                             "base-to-new training needs the standard split (base = first ceil(n/2) labels)")
        print(f"PromptKD base-to-new: training on the unlabeled images of all {len(names)} classes "
              f"({len(everything.dataset.train_x):,} images); evaluating on the {base_classes} base classes")
        self.dm = everything  # the model is built for all classes
        self.train_loader_x = everything.train_loader_x
        if distributed.is_distributed():
            self.train_loader_x = distributed.shard_loader(self.train_loader_x, self.cfg.SEED)
        self.shots_per_class = self.count_shots(everything.dataset.train_x)
        self.eval_classes = torch.arange(base_classes)

    def model_inference(self, images):
        if self.eval_classes is None:
            return super().model_inference(images)
        return self.model.logits(images, self.eval_classes.to(images.device))

"""What a plan costs before it runs: training steps, items through each of CLIP's towers, FLOPs, GPU-hours.

The model, per run (from the run's own config: batch size, epochs, backbone, shots, DPC's settings):
- a training run has ``epochs x (train images // batch)`` steps (Dassl drops the last partial batch), with
  ``shots x classes`` training images (``classes``: the base half, rounded up, for base classes);
- a host step (and a DPC step with ``TRAINER.DPC.DHNO False``) encodes its B images and the text of every training
  class (CoCoOp: every class per image), each with a backward; the image tower's backward only where the host's image
  features are not CLIP's own (prompts enter the tower);
- a DHNO step contrasts M = B + min(B·max(K−1, MIN_NEGATIVES), C − B) images (anchors and at most K−1 hard negatives
  each, as the sampler draws them: an upper bound) and the text of the min(M, C) classes present, with a backward;
  scoring the anchors with the frozen P adds B image forwards where the image tower is prompted;
- every run's test (the final test of a training, or an evaluation) encodes its test images (the classes' share of
  the dataset's test set) and the text of its classes once (CoCoOp: per image). The test-feature cache, on by
  default, encodes a test image once for hosts with CLIP's own image features: counted every time here;
- FLOPs per item are ``TOWER_FLOPS`` (counted by ``python -m tools.bench.tower_flops``); a backward costs one more
  forward (``BACKWARD_FACTOR``: CLIP's weights are frozen, so only activation gradients flow, no weight
  gradients); element-wise work, data loading, the teacher's passes inside a PromptKD step and the optimiser are not
  counted;
- GPU-hours are the FLOPs at a stated sustained throughput (``--gpu-tflops``, default ``DEFAULT_TFLOPS``).

A run whose dataset or backbone is not known here (a dataset of your own, a tiny test CLIP) is counted as a run and
named as not estimated.
"""
import math
from dataclasses import dataclass, field

# (image-tower FLOPs per image, text-tower FLOPs per 77-token prompt), forward: python -m tools.bench.tower_flops
TOWER_FLOPS = {"ViT-B/16": (35.13e9, 5.96e9), "ViT-L/14": (162.03e9, 13.30e9)}
BACKWARD_FACTOR = 1.0  # FLOPs of a backward through a frozen tower, in forwards
# Assumed sustained throughput of one GPU on these runs (TFLOP/s): about a tenth of an H100's dense bf16 peak
# (989) and a third of an A100's (312), because batches of 4 to 32 images keep a GPU far from its peak. An
# assumption, not a measurement.
DEFAULT_TFLOPS = 100.0

# dataset config stem -> (classes, test images), from the CoOp and CoCoOp papers' dataset tables
DATASET_SIZES = {
    "imagenet": (1000, 50000), "caltech101": (100, 2465), "oxford_pets": (37, 3669), "stanford_cars": (196, 8041),
    "oxford_flowers": (102, 2463), "food101": (101, 30300), "fgvc_aircraft": (100, 3333), "sun397": (397, 19850),
    "dtd": (47, 1692), "eurosat": (10, 8100), "ucf101": (101, 3783),
    "imagenetv2": (1000, 10000), "imagenet_sketch": (1000, 50889), "imagenet_a": (200, 7500),
    "imagenet_r": (200, 30000),
}


def subsample_classes(classes, subsample):
    """The classes a run sees: the base half (rounded up, as the readers split), the rest, or all."""
    base = math.ceil(classes / 2)
    return {"base": base, "new": classes - base}.get(subsample, classes)


@dataclass
class Cost:
    runs: int = 0
    trainings: int = 0
    evaluations: int = 0
    training_steps: int = 0
    image_forward: int = 0  # images through the image tower
    image_backward: int = 0  # of those, with a backward
    text_forward: int = 0  # prompts through the text tower
    text_backward: int = 0
    flops: float = 0.0
    not_estimated: list = field(default_factory=list)  # run keys

    def add_passes(self, shape, image=0, image_grad=0, text=0, text_grad=0, times=1):
        image_flops, text_flops = TOWER_FLOPS[shape]
        self.image_forward += image * times
        self.image_backward += image_grad * times
        self.text_forward += text * times
        self.text_backward += text_grad * times
        self.flops += times * (image_flops * (image + BACKWARD_FACTOR * image_grad)
                               + text_flops * (text + BACKWARD_FACTOR * text_grad))

    def gpu_hours(self, tflops=DEFAULT_TFLOPS):
        return self.flops / (tflops * 1e12) / 3600


@dataclass(frozen=True)
class _Tower:
    """What the run's model does with each tower: from its host model's flags."""

    image_grad: bool  # the image tower is prompted: a backward through it, and P's scoring differs from P'
    text_per_image: bool  # CoCoOp: the text of every class per image


def _host_name(run, cfg):
    return cfg.TRAINER.DPC.HOST if run.trainer == "DPC" else run.trainer


def _tower(host):
    from trainers.host_api.host_trainer import host_model_class  # imports torch: only when a plan is costed

    model = host_model_class(host)
    return _Tower(image_grad=not model.frozen_image_features, text_per_image=model.text_depends_on_image)


def _step_passes(cfg, dhno, batch, classes, tower):
    """(image forwards, image backwards, text forwards, text backwards) of one training step."""
    if not dhno:
        images, texts = batch, classes
        scoring = 0
    else:
        k = min(cfg.TRAINER.DPC.TOPK, classes)
        images = batch + min(batch * max(k - 1, cfg.TRAINER.DPC.MIN_NEGATIVES), max(classes - batch, 0))
        texts = min(images, classes)
        scoring = batch if tower.image_grad else 0
    if tower.text_per_image:
        texts *= images
    return images + scoring, images if tower.image_grad else 0, texts, texts


def _backbone(run):
    """The run's backbone; a DPC run's config leaves it to its stage-1 run (the first run it needs)."""
    cfg = run.config()
    if cfg is not None and cfg.MODEL.BACKBONE.NAME:
        return cfg.MODEL.BACKBONE.NAME
    return _backbone(run.needs[0]) if run.needs else None


def add_run(cost, run):
    """Add one run's counts to ``cost`` (or name it as not estimated)."""
    cost.runs += 1
    cost.evaluations += run.eval_only
    cost.trainings += not run.eval_only
    cfg = run.config()
    sizes = DATASET_SIZES.get(run.dataset)
    shape = _backbone(run)
    if cfg is None or sizes is None or shape not in TOWER_FLOPS:
        cost.not_estimated.append(run.key)
        return
    tower = _tower(_host_name(run, cfg))
    total_classes, total_test = sizes
    classes = subsample_classes(total_classes, cfg.DATASET.SUBSAMPLE_CLASSES)
    if not run.eval_only:
        batch, shots = cfg.DATALOADER.TRAIN_X.BATCH_SIZE, cfg.DATASET.NUM_SHOTS
        if shots <= 0:
            cost.not_estimated.append(run.key)
            return
        steps = int(cfg.OPTIM.MAX_EPOCH) * max(1, (shots * classes) // batch)
        dhno = run.trainer == "DPC" and cfg.TRAINER.DPC.DHNO
        cost.training_steps += steps
        image, image_grad, text, text_grad = _step_passes(cfg, dhno, batch, classes, tower)
        cost.add_passes(shape, image, image_grad, text, text_grad, times=steps)
        if dhno:
            cost.add_passes(shape, text=classes)  # P's text features, once
    test_images = round(total_test * classes / total_classes)
    cost.add_passes(shape, image=test_images, text=classes * (test_images if tower.text_per_image else 1))


def estimate(runs):
    cost = Cost()
    for run in runs:
        add_run(cost, run)
    return cost


def cost_lines(cost, tflops=DEFAULT_TFLOPS):
    """The dry run's cost lines (comments)."""
    lines = [f"# cost estimate of the {cost.runs} runs ({cost.trainings} trainings, {cost.evaluations} evaluations): "
             f"{cost.training_steps:,} training steps; image tower {cost.image_forward:,} images "
             f"({cost.image_backward:,} with a backward), text tower {cost.text_forward:,} prompts "
             f"({cost.text_backward:,} with a backward)",
             f"# {cost.flops:.3g} FLOPs = {cost.gpu_hours(tflops):,.1f} GPU-hours at {tflops:g} TFLOP/s sustained "
             "(assumed; FLOPs per item from tools.bench.tower_flops; the model: tools/pipeline/cost.py)"]
    if cost.not_estimated:
        lines.append(f"# not estimated: {len(cost.not_estimated)} of {cost.runs} runs (dataset or backbone without "
                     f"known sizes), e.g. {cost.not_estimated[0]}")
    return lines

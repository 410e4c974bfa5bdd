"""``PromptHostTrainer``: model building and the training step shared by every host (CoOp, CoCoOp, KgCoOp,
IVLP, MaPLe, PromptSRC): the host model computes its own loss.

The registered module is the host model's prompt module (learnable tensors only), optimised alone; the reference
hands MaPLe/IVLP/PromptSRC's optimiser every parameter, but frozen ones get no gradient, so the updates agree.
The LR scheduler steps after the last batch of each epoch, as in Dassl.
"""
from .base import ClipTrainer
from .engine import compute_accuracy
from .optim import build_lr_scheduler, build_optimizer


def strip_module_prefix(state_dict):
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in state_dict.items()}


class PromptHostTrainer(ClipTrainer):

    @classmethod
    def build_host_model(cls, cfg, classnames, clip_model):
        raise NotImplementedError

    def build_model(self):
        classnames = self.dm.dataset.classnames
        self.model = self.build_host_model(self.cfg, classnames, self.load_clip()).to(self.device)
        self.optim = build_optimizer(self.model.prompt_module, self.cfg.OPTIM)
        self.sched = build_lr_scheduler(self.optim, self.cfg.OPTIM)
        self.register_model(self.registered_name, self.model.prompt_module, self.optim, self.sched)

    def compute_loss(self, images, labels):
        """(loss, logits, extra numbers to log); hosts with several loss terms report them here."""
        loss, logits = self.model.loss(images, labels)
        return loss, logits, {}

    def forward_backward(self, batch):
        images, labels = self.parse_batch_train(batch)
        with self.autocast():
            loss, logits, terms = self.compute_loss(images, labels)
        self.backward_and_update(loss)
        summary = {"loss": loss.item(), "acc": compute_accuracy(logits, labels)[0].item(), **terms}
        if (self.batch_idx + 1) == self.num_batches:
            self.update_lr()
            self.after_last_batch()
        return summary

    def after_last_batch(self):
        """Called after the optimiser and scheduler steps of each epoch's last batch (PromptSRC's GPA)."""

    @classmethod
    def adapt_checkpoint(cls, name, state_dict):
        """Our checkpoints load as they are; reference layouts are mapped by ``from_reference``."""
        return cls.from_reference(strip_module_prefix(state_dict))

    @classmethod
    def from_reference(cls, state_dict):
        return state_dict

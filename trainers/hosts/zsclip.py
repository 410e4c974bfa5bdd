"""Zero-shot CLIP: one hand-written template per dataset; nothing is trained or saved."""
import torch
import torch.nn.functional as F
from torch import nn

from trainers.engine import TRAINER_REGISTRY
from trainers.engine.clip_trainer import ClipTrainer
from trainers.evaluation.scoring import FeatureScorer
from trainers.prompted_clip import tokenize
from trainers.prompted_clip.templates import dataset_template


class ZeroshotCLIPModel(nn.Module):
    def __init__(self, clip_model, texts):
        super().__init__()
        self.clip = clip_model
        with torch.no_grad():
            text_features = clip_model.encode_text(tokenize(texts).to(clip_model.logit_scale.device))
        self.register_buffer("text_features", F.normalize(text_features, dim=-1), persistent=False)

    def encode_image(self, images):
        return self.clip.encode_image(images.type(self.clip.dtype))

    def logits_from_features(self, image_features):
        return self.clip.logit_scale.exp() * F.normalize(image_features, dim=-1) @ self.text_features.t()

    def forward(self, images):
        return self.logits_from_features(self.encode_image(images))


@TRAINER_REGISTRY.register()
class ZeroshotCLIP(ClipTrainer):
    config_node = "COOP"  # the reference runs it with a CoOp config; only PREC is read from the node

    def build_model(self):
        template = dataset_template(self.cfg.DATASET.NAME)
        texts = [template.format(name.replace("_", " ")) for name in self.dm.dataset.classnames]
        print(f"Prompt example: {texts[0]}")
        self.model = ZeroshotCLIPModel(self.load_clip(), texts).to(self.device)

    def test_scorer(self):
        """CLIP's own image features: the same in every run, so the feature cache may keep them."""
        return FeatureScorer(self.model.encode_image, self.model.logits_from_features, self.model.clip.visual)

    def train(self):
        raise RuntimeError("ZeroshotCLIP has nothing to train: run it with --eval-only")

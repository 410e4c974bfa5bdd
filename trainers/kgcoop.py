"""KgCoOp, knowledge-guided context optimisation (Yao et al., CVPR 2023; HOSTS.md §5).

CoOp's prompts, plus a pull towards frozen CLIP's hand-crafted text features:
loss = CE + W * (1 - mean_c cos(t_c, g_c)), g the features of the dataset's KgCoOp template (one per dataset).

Config node: as in its repository, KgCoOp reads ``TRAINER.COOP``. Its own keys ``W`` (1.0; the reference scripts
pass 8.0) and ``ALPHA`` (1.0, unused by the reference) are added to that node, where CoOp ignores them. The one
clash is ``CTX_INIT``: a boolean in the KgCoOp repo (True = "a photo of a"), a phrase in CoOp's node. The node
keeps CoOp's string type, so write ``CTX_INIT "a photo of a"`` where the reference writes ``True`` (any phrase
works, its word count setting n_ctx as in CoOp; "" = random init). ``CLASS_TOKEN_POSITION`` is ignored ("end"),
as in the reference.

Differences from the reference: the hand-crafted features come from the host's own frozen CLIP in its
precision (the reference builds a second, always-fp16 CLIP on CUDA), and the inert tensors of its prompt learner
(``bias_vectors``, ``meta_net``) are not created; ``from_reference`` drops them from reference checkpoints.
"""
from types import SimpleNamespace

import torch
import torch.nn.functional as F

from .config import config_extension
from .coop import CoOpCLIP
from .engine import TRAINER_REGISTRY
from .host import freeze_all_but
from .host_trainer import PromptHostTrainer
from .templates import kgcoop_template
from .text_targets import class_texts, encode_texts

INERT_REFERENCE_KEYS = ("bias_vectors", "token_midfix")


@config_extension
def add_kgcoop_config(cfg):
    cfg.TRAINER.COOP.W = 1.0  # weight of the knowledge-guided score
    cfg.TRAINER.COOP.ALPHA = 1.0  # declared by the KgCoOp repo, unused there too


def kg_score(text_features, handcrafted_features):
    """1 - mean over classes of cos(t_c, g_c) (cosine eps 1e-7); both inputs are re-normalised as in §5.3."""
    t = F.normalize(text_features, dim=-1)
    g = handcrafted_features / handcrafted_features.norm(dim=-1, keepdim=True)
    return 1.0 - torch.mean(F.cosine_similarity(t, g, dim=1, eps=1e-7))


class KgCoOpCLIP(CoOpCLIP):
    def __init__(self, coop_cfg, classnames, clip_model, template, weight):
        if coop_cfg.CLASS_TOKEN_POSITION != "end":
            print(f'KgCoOp ignores CLASS_TOKEN_POSITION "{coop_cfg.CLASS_TOKEN_POSITION}": the class goes at the end')
        end_cfg = SimpleNamespace(N_CTX=coop_cfg.N_CTX, CSC=coop_cfg.CSC, CTX_INIT=coop_cfg.CTX_INIT,
                                  CLASS_TOKEN_POSITION="end")
        super().__init__(end_cfg, classnames, clip_model)
        self.weight = weight
        texts = class_texts(template, classnames)
        print(f"Hand-crafted prompt for the knowledge-guided score: {texts[0]}")
        features = encode_texts(clip_model, texts)
        # Class-dependent, rebuilt from the class names, never saved.
        self.register_buffer("handcrafted_text_features", F.normalize(features, dim=-1), persistent=False)

    def score(self, text_features, class_idx=None):
        targets = self.handcrafted_text_features
        return kg_score(text_features, targets if class_idx is None else targets[class_idx])

    def loss(self, images, labels):
        image_features = F.normalize(self.encode_image(images), dim=-1)
        text_features = F.normalize(self.encode_text(), dim=-1)
        logits = self.logit_scale.exp() * image_features @ text_features.t()
        return F.cross_entropy(logits, labels) + self.weight * self.score(text_features), logits


@TRAINER_REGISTRY.register()
class KgCoOp(PromptHostTrainer):
    config_node = "COOP"
    registered_name = "prompt_learner"

    @classmethod
    def build_host_model(cls, cfg, classnames, clip_model):
        node = cfg.TRAINER.COOP
        print("Building custom CLIP (KgCoOp)")
        model = KgCoOpCLIP(node, classnames, clip_model, kgcoop_template(cfg.DATASET.NAME), node.W)
        print("Turning off gradients in both the image and the text encoder")
        freeze_all_but(model, model.prompt_module_name)
        return model

    @classmethod
    def from_reference(cls, state_dict):
        """Drop the reference's inert tensors (``bias_vectors``, ``meta_net.*``, ``token_midfix``)."""
        return {key: value for key, value in state_dict.items()
                if key not in INERT_REFERENCE_KEYS and not key.startswith("meta_net.")}

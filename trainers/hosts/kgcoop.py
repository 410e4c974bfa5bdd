"""KgCoOp, knowledge-guided context optimisation (Yao et al., CVPR 2023).

CoOp's prompts, plus a pull towards frozen CLIP's hand-crafted text features:
loss = CE + W * (1 - mean_c cos(t_c, g_c)), g the features of the dataset's KgCoOp template (one per dataset).

Config node: as in its repository, KgCoOp reads ``TRAINER.COOP``. Its own keys ``W`` (1.0; the reference scripts
pass 8.0) and ``ALPHA`` (1.0, unused by the reference) are added to that node, where CoOp ignores them. The one
clash is ``CTX_INIT``: a boolean in the KgCoOp repo (True = "a photo of a"), a phrase in CoOp's node. The node
keeps CoOp's string type, so write ``CTX_INIT "a photo of a"`` where the reference writes ``True`` (any phrase
works, its word count setting n_ctx as in CoOp; "" = random init). ``CLASS_TOKEN_POSITION`` is ignored ("end"),
as in the reference.

Differences from the reference: the hand-crafted features come from the host's own frozen CLIP in its
precision (the reference builds a second, always-fp16 CLIP on CUDA; ``MODEL.REFERENCE_PARITY`` encodes them with
an fp16 copy of the text tower, as that one computes them), computed on first use (an evaluation never needs
them), and the inert tensors of its prompt learner (``bias_vectors``, ``meta_net``) are not created;
``adapt_state_dict`` drops them from reference checkpoints.
"""
import torch
import torch.nn.functional as F

from trainers.engine import TRAINER_REGISTRY
from trainers.engine.config import config_extension
from trainers.host_api.host_trainer import HostTrainer
from trainers.host_api.interface import HostLoss
from trainers.hosts.coop import CoOpCLIP
from trainers.hosts.parts.reference_order import normalised_once
from trainers.hosts.parts.text_targets import class_texts, encode_texts
from trainers.prompted_clip.templates import kgcoop_template

INERT_REFERENCE_KEYS = ("bias_vectors", "token_midfix")


@config_extension
def add_kgcoop_config(cfg):
    cfg.TRAINER.COOP.W = 1.0  # weight of the knowledge-guided score
    cfg.TRAINER.COOP.ALPHA = 1.0  # declared by the KgCoOp repo, unused there too


def kg_score(text_features, handcrafted_features):
    """1 - mean over classes of cos(t_c, g_c) (cosine eps 1e-7); both inputs are re-normalised, as the reference."""
    return kg_score_of_unit(F.normalize(text_features, dim=-1), handcrafted_features)


def kg_score_of_unit(text_unit, handcrafted_features):
    """``kg_score`` of text features already normalised (the hand-crafted ones are normalised again, as there)."""
    g = handcrafted_features / handcrafted_features.norm(dim=-1, keepdim=True)
    return 1.0 - torch.mean(F.cosine_similarity(text_unit, g, dim=1, eps=1e-7))


class KgCoOpCLIP(CoOpCLIP):
    class_token_position = "end"
    overridable_settings = ("PREC", "W", "ALPHA")  # W and ALPHA weigh the loss only

    def __init__(self, node, classnames, clip_model, template):
        if node.CLASS_TOKEN_POSITION != "end":
            print(f'KgCoOp ignores CLASS_TOKEN_POSITION "{node.CLASS_TOKEN_POSITION}": the class goes at the end')
        super().__init__(node, classnames, clip_model)
        self.weight = node.W
        self.texts = class_texts(template, classnames)
        self.token_embedding = clip_model.token_embedding  # frozen; kept to encode the hand-crafted prompts
        # Class-dependent, rebuilt from the class names, never saved.
        self.register_buffer("_handcrafted", None, persistent=False)
        self._handcrafted_parity = None  # the reference_parity they were computed under

    @classmethod
    def from_config(cls, cfg, classnames, clip_model):
        return cls(cfg.TRAINER.COOP, classnames, clip_model, kgcoop_template(cfg.DATASET.NAME))

    @property
    def handcrafted_text_features(self):
        """(n_cls, E), normalised: frozen CLIP's features of the dataset template, per class; computed again when
        ``reference_parity`` changes."""
        if self._handcrafted is None or self._handcrafted_parity != self.reference_parity:
            print(f"Hand-crafted prompt for the knowledge-guided score: {self.texts[0]}")
            # Under parity as the reference computes them: its second CLIP stays fp16 in every precision.
            features = encode_texts(self.text_encoder, self.token_embedding, self.texts, fp16=self.reference_parity)
            self._handcrafted, self._handcrafted_parity = F.normalize(features, dim=-1), self.reference_parity
        return self._handcrafted

    def score(self, text_features, class_idx=None):
        targets = self.handcrafted_text_features
        return kg_score(text_features, targets if class_idx is None else targets[class_idx])

    def loss_from_features(self, image_features, text_features, labels):
        if self.reference_parity:  # the reference's one normalisation per tower, shared by logits and score
            logits, _, text_unit = normalised_once(self, image_features, text_features)
            score = kg_score_of_unit(text_unit, self.handcrafted_text_features)
        else:
            logits, score = self.head(image_features, text_features), self.score(text_features)
        return HostLoss(F.cross_entropy(logits, labels) + self.weight * score, logits)

    @classmethod
    def adapt_state_dict(cls, state_dict):
        """Drop the reference's inert tensors (``bias_vectors``, ``meta_net.*``, ``token_midfix``)."""
        return {key: value for key, value in state_dict.items()
                if key not in INERT_REFERENCE_KEYS and not key.startswith("meta_net.")}


@TRAINER_REGISTRY.register()
class KgCoOp(HostTrainer):
    model_class = KgCoOpCLIP
    paper_configs = {"base2new": "vit_b16_ep100_ctxv1"}
    contract_opts = ("OPTIM.LR", 0.002, "TRAINER.COOP.CTX_INIT", "")  # "a photo of a" = its template: score at minimum

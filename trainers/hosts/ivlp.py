"""IVLP, independent vision-language prompting: deep text prompts and deep vision prompts, learned
independently, on the stock CLIP towers (the architecture lives in ``vl_prompts.IndependentVLCLIP``)."""
from trainers.engine import TRAINER_REGISTRY
from trainers.engine.config import config_extension, new_node
from trainers.host_api.host_trainer import HostTrainer
from trainers.hosts.parts.vl_prompts import IndependentVLCLIP


@config_extension
def add_ivlp_config(cfg):
    cfg.TRAINER.IVLP = new_node(
        N_CTX_VISION=2, N_CTX_TEXT=2, CTX_INIT="a photo of a", PREC="fp16",
        PROMPT_DEPTH_VISION=9, PROMPT_DEPTH_TEXT=9,
        ROUND_PROMPTS_FP16=False,  # ours: round inserted prompts through fp16 as the reference does under fp32/amp
    )


class IVLPCLIP(IndependentVLCLIP):
    config_node = "IVLP"


@TRAINER_REGISTRY.register()
class IVLP(HostTrainer):
    model_class = IVLPCLIP
    paper_configs = {"base2new": "vit_b16_c2_ep20_batch4_4+4ctx"}  # the PromptSRC paper's IVLP baseline

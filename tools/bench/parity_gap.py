"""How far the default mode is from MODEL.REFERENCE_PARITY, per host: logits and prompt gradients.

    python -m tools.bench.parity_gap                 # tiny random CLIP
    python -m tools.bench.parity_gap --vit-b16       # ViT-B/16-sized random weights (slow on a CPU)

Both modes run the same host with the same prompt values on the same images, in fp32 and in fp16 (the released
checkpoints' dtypes, as ``clip.model.convert_weights`` makes them; fp16 on a CPU needs a torch with CPU half
kernels). The fp16 rounding of inserted prompts that the switch implies (IVLP, PromptSRC, MaPLe) changes what the
prompts are, not only how the rounding falls, so the default mode is given it too here. Printed per host and
precision: the largest |logit difference| in evaluation, and the largest relative difference of a prompt tensor's
gradient of the host's loss (|g_fast - g_parity|_max / |g_parity|_max).
"""
import argparse

import clip
import torch

import trainers  # noqa: F401  (registers the hosts and their config nodes)
from tools.bench.clip_shapes import VIT_B16
from trainers.engine.config import build_cfg
from trainers.host_api.host_trainer import host_model_class, registered_hosts
from trainers.host_api.interface import build_host
from trainers.prompted_clip import build_tiny_clip

CLASSNAMES = ["red circle", "green square", "blue triangle", "yellow circle", "golden retriever", "sea lion"]


def host_pair(host, clip_model):
    """The host in both modes, with the same prompt values."""
    models = []
    model_class = host_model_class(host)
    rounding = ([f"TRAINER.{model_class.config_node}.ROUND_PROMPTS_FP16", True]
                if model_class.reference_rounds_prompts_fp16 else [])
    for parity in (False, True):
        cfg = build_cfg([f"configs/trainers/{host}/cpu_tiny.yaml"], ["MODEL.REFERENCE_PARITY", parity, *rounding],
                        trainer=host)
        torch.manual_seed(0)
        models.append(build_host(host_model_class(host), cfg, CLASSNAMES, clip_model))
    models[1].prompt_learner.load_state_dict(models[0].prompt_learner.state_dict())
    return models


def gaps(host, clip_model, images, labels):
    fast, parity = host_pair(host, clip_model)
    with torch.no_grad():
        logit_gap = (fast.logits(images).float() - parity.logits(images).float()).abs().max().item()
    gradients = []
    for model in (fast, parity):
        model.loss(images, labels).total.backward()
        gradients.append({n: p.grad.float() for n, p in model.prompt_learner.named_parameters()})
    gradient_gap = max(((gradients[0][n] - g).abs().max() / g.abs().max().clamp_min(1e-30)).item()
                       for n, g in gradients[1].items())
    return logit_gap, gradient_gap


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vit-b16", action="store_true", help="ViT-B/16-sized random weights instead of a tiny CLIP")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    size = 224 if args.vit_b16 else 32
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(4, 3, size, size, generator=generator).to(args.device)
    labels = torch.tensor([0, 1, 2, 3], device=args.device)
    print(f"{'host':10s} {'precision':9s} {'max |logit diff|':>17s} {'max rel. grad diff':>19s}")
    for precision in ("fp32", "fp16"):
        clip_model = build_tiny_clip(**(VIT_B16 if args.vit_b16 else {}))
        if precision == "fp16":
            clip.model.convert_weights(clip_model)
        clip_model = clip_model.to(args.device)
        for host in registered_hosts():
            logit_gap, gradient_gap = gaps(host, clip_model, images, labels)
            print(f"{host:10s} {precision:9s} {logit_gap:17.3e} {gradient_gap:19.3e}")


if __name__ == "__main__":
    main()

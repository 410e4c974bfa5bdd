"""MMRL and MMRL++ against the reference's own ``CustomCLIP`` on shared weights: logits, loss and gradients.

    python -m tools.bench.mmrl_reference_parity --reference /path/to/MMRL    # a checkout of yunncheng/MMRL

The reference's code is imported from the folder given (it is not part of this repository) and needs Dassl. Both
models are built on one random 4-layer tiny CLIP (one text head per 64 channels, as the reference's
``build_model`` derives it), in fp32 on the CPU; the reference's learner state is loaded into ours through
``adapt_state_dict``. Printed per host and mode (``MODEL.REFERENCE_PARITY`` on and off): the largest absolute
difference of the class-token and the fused logits (scale 100), of the loss, and of a learned tensor's gradient
(absolute, and relative to that gradient's largest entry), and how many of the learned tensors' gradients are
bit-identical (``torch.equal``). Exit status 1 when ``MODEL.REFERENCE_PARITY`` leaves any of these not bit-identical.
"""
import argparse
import importlib
import os
import sys

import torch
import torch.nn.functional as F
from yacs.config import CfgNode

# Not trainers.run.paths.REPO_DIR: nothing of ours may be imported before the reference's same-named packages are
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLASSNAMES = ["red circle", "green square", "blue_triangle", "yellow circle", "golden retriever"]
DATASET = "OxfordPets"  # any name in the reference's template table
LAYERS = [2, 4]  # a gap: layer 3 keeps the tokens of layer 2
N_TOKENS, REP_DIM, PROJ_RANK, RES_RANK, ALPHA, BETA, REG = 3, 16, 8, 2, 0.7, 0.9, 1.0
IMAGE_KEYS = {"image_encoder.proj_rep": "proj_rep", "image_encoder.A": "proj_rep_A", "image_encoder.B": "proj_rep_B"}


def import_reference(folder):
    """The reference's ``clip`` package and trainer modules, then out of the way of ours (same names)."""
    sys.path.insert(0, folder)
    try:
        modules = (importlib.import_module("clip"), importlib.import_module("trainers.mmrl"),
                   importlib.import_module("trainers.mmrlpp"))
    finally:
        sys.path.remove(folder)
    for name in [m for m in sys.modules if m.split(".")[0] in ("clip", "trainers")]:
        sys.modules.pop(name)
    from dassl.engine import TRAINER_REGISTRY
    for name in ("MMRL", "MMRLpp"):  # the reference registered its trainers; ours take the same names
        TRAINER_REGISTRY._obj_map.pop(name, None)
    return modules


def reference_model(clip_pkg, module, host, stock):
    node = "MMRL" if host == "MMRL" else "MMRLpp"
    design = {"model": node, "rep_tokens_layers": LAYERS, "n_rep_tokens": N_TOKENS, "proj_lora_dim": PROJ_RANK,
              "beta": BETA}
    build = clip_pkg.clip.build_model_MMRL if host == "MMRL" else clip_pkg.clip.build_model_MMRLpp
    clip_model = build(dict(stock.state_dict()), design).float()
    zero_shot = clip_pkg.clip.build_model_MMRL(dict(stock.state_dict()), {**design, "model": "CLIP"}).float()
    cfg = CfgNode()
    cfg.INPUT, cfg.DATASET, cfg.TRAINER = CfgNode(), CfgNode(), CfgNode()
    cfg.INPUT.SIZE, cfg.DATASET.NAME = (32, 32), DATASET
    cfg.TRAINER[node] = CfgNode(dict(ALPHA=ALPHA, N_REP_TOKENS=N_TOKENS, REP_DIM=REP_DIM, REP_LAYERS=LAYERS,
                                     BETA=BETA, PROJ_LORA_DIM=PROJ_RANK, RES_LORA_DIM=RES_RANK))
    model = module.CustomCLIP(cfg, CLASSNAMES, clip_model)
    with torch.no_grad():  # the zero-initialised low-rank factors, moved so that they matter
        for name, p in model.named_parameters():
            if name.endswith(".B"):
                p.normal_(std=0.05)
    return model, clip_model, zero_shot


def our_model(host, clip_model, parity):
    from trainers.engine.config import build_cfg
    from trainers.host_api.host_trainer import host_model_class
    from trainers.host_api.interface import build_host

    node = "MMRL" if host == "MMRL" else "MMRLpp"
    opts = [f"TRAINER.{node}.REP_LAYERS", str(LAYERS), f"TRAINER.{node}.N_REP_TOKENS", N_TOKENS,
            f"TRAINER.{node}.REP_DIM", REP_DIM, f"TRAINER.{node}.REG_WEIGHT", REG, f"TRAINER.{node}.ALPHA", ALPHA,
            "DATASET.NAME", DATASET, "MODEL.REFERENCE_PARITY", parity]
    if host != "MMRL":
        opts += [f"TRAINER.{node}.BETA", BETA, f"TRAINER.{node}.PROJ_LORA_DIM", PROJ_RANK,
                 f"TRAINER.{node}.RES_LORA_DIM", RES_RANK]
    cfg = build_cfg([os.path.join(REPO, "configs", "trainers", host, "cpu_tiny.yaml")], opts, trainer=host)
    return build_host(host_model_class(host), cfg, CLASSNAMES, clip_model)


def compare(reference, host, parity):
    from trainers.hosts.parts.representation_tokens import CLASS_TOKEN, FUSED
    from trainers.prompted_clip import build_tiny_clip

    clip_pkg, mmrl, mmrlpp = reference
    module = mmrl if host == "MMRL" else mmrlpp
    stock = build_tiny_clip(vision_layers=4, transformer_layers=4, transformer_heads=1)
    theirs, their_clip, zero_shot = reference_model(clip_pkg, module, host, stock)
    shared = build_tiny_clip(vision_layers=4, transformer_layers=4, transformer_heads=1)
    shared.load_state_dict({k: v for k, v in their_clip.state_dict().items() if k in shared.state_dict()})
    ours = our_model(host, shared, parity)
    ours.prompt_learner.load_state_dict(ours.adapt_state_dict(theirs.state_dict()), strict=True)

    images = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    labels = torch.tensor([0, 2, 4, 1])
    theirs.train()
    logits, logits_rep, fused, image_features, text_features = theirs(images)
    zs_image = F.normalize(zero_shot.visual(images), dim=-1)
    tokens = theirs.tokenized_prompts
    zs_text = F.normalize(module.TextEncoder_CLIP(zero_shot)(zero_shot.token_embedding(tokens), tokens), dim=-1)
    criterion = (module.MMRL_Loss if host == "MMRL" else module.MMRLpp_Loss)(reg_weight=REG, alpha=ALPHA)
    their_loss = criterion(logits, logits_rep, image_features, text_features, zs_image, zs_text, labels)
    learned = {(k[len("representation_learner."):] if k.startswith("representation_learner.") else IMAGE_KEYS[k]): p
               for k, p in theirs.named_parameters()
               if k.startswith("representation_learner.") or k in IMAGE_KEYS}
    their_grads = torch.autograd.grad(their_loss, list(learned.values()))

    ours.prompt_learner.train()
    our_loss = ours.loss(images, labels).total
    params = dict(ours.prompt_learner.named_parameters())
    our_grads = torch.autograd.grad(our_loss, [params[name] for name in learned])
    ours.prompt_learner.eval()
    with torch.no_grad():
        ours.test_branch = CLASS_TOKEN
        class_token = ours.logits(images)
        ours.test_branch = FUSED
        our_fused = ours.logits(images)
    return {
        "logits (class token)": (class_token - logits).abs().max().item(),
        "logits (fused)": (our_fused - fused).abs().max().item(),
        "loss": (our_loss - their_loss).abs().item(),
        "gradient": max((a - b).abs().max().item() for a, b in zip(our_grads, their_grads)),
        "gradient (relative)": max(((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item()
                                   for a, b in zip(our_grads, their_grads)),
        "gradients bit-identical": f"{sum(map(torch.equal, our_grads, their_grads))}/{len(our_grads)}",
    }


def bit_identical(result):
    """Logits, loss and every gradient equal to the reference's, bit for bit."""
    done, total = result["gradients bit-identical"].split("/")
    return done == total and all(result[key] == 0 for key in ("logits (class token)", "logits (fused)", "loss"))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", required=True, help="a checkout of github.com/yunncheng/MMRL")
    args = parser.parse_args(argv)
    if not os.path.isfile(os.path.join(args.reference, "trainers", "mmrl.py")):
        parser.error(f"{args.reference} holds no trainers/mmrl.py: give a checkout of yunncheng/MMRL")
    reference = import_reference(os.path.abspath(args.reference))
    torch.manual_seed(0)
    status = 0
    for host in ("MMRL", "MMRLpp"):
        for parity in (True, False):
            result = compare(reference, host, parity)
            print(f"{host:7s} REFERENCE_PARITY={parity!s:5s} "
                  + "  ".join(f"{key}: {value:.1e}" if isinstance(value, float) else f"{key}: {value}"
                              for key, value in result.items()), flush=True)
            if parity and not bit_identical(result):
                status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())

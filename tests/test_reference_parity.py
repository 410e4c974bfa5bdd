"""MODEL.REFERENCE_PARITY: the encoders compute as the reference implementations do (all 77 text positions, casts
after copying the prompts); the default differs from that in rounding only. The fp16 rounding of inserted prompts
the switch implies is a change of values, not of rounding order: both modes are compared with the same rounding."""
import pytest
import torch
from support.hosts import CLASSNAMES, HOSTS, build_host, random_images

from trainers.host_api.host_trainer import host_model_class
from trainers.hosts.coop import CoOpCLIP
from trainers.hosts.zsclip import ZeroshotCLIPModel
from trainers.prompted_clip import build_tiny_clip, prompt_copies

pytestmark = pytest.mark.usefixtures("promptkd_teacher")  # HOSTS include PromptKD

@torch.no_grad()
@pytest.mark.parametrize("host", HOSTS)
def test_both_modes_give_the_same_logits_in_fp32(host):
    clip_model = build_tiny_clip()
    model_class = host_model_class(host)
    rounding = ((f"TRAINER.{model_class.config_node}.ROUND_PROMPTS_FP16", True)
                if model_class.reference_rounds_prompts_fp16 else ())
    fast, parity = build_host(host, *rounding, clip_model=clip_model), build_host(host, "MODEL.REFERENCE_PARITY", True,
                                                                                  clip_model=clip_model)
    parity.prompt_learner.load_state_dict(fast.prompt_learner.state_dict())
    assert parity.reference_parity and not fast.reference_parity
    assert getattr(parity, "round_prompts_fp16", False) == bool(rounding)  # implied by the switch alone
    images = random_images()
    difference = (fast.logits(images) - parity.logits(images)).abs().max().item()
    # MMRL's hosts scale the cosines by 100, not by the tiny CLIP's 14.3: the same rounding, 7x larger in logits
    assert difference <= 1e-5 * (100 / fast.logit_scale.exp().item() if host in ("MMRL", "MMRLpp") else 1)


@torch.no_grad()
def test_with_parity_coop_from_its_init_phrase_is_zero_shot_clip_bit_for_bit():
    clip_model = build_tiny_clip()
    coop = build_host("CoOp", "MODEL.REFERENCE_PARITY", True, clip_model=clip_model)
    assert isinstance(coop, CoOpCLIP) and coop.prompt_learner.n_ctx == 4  # the tokens of "a photo of a"
    zero_shot = ZeroshotCLIPModel(clip_model, [f"a photo of a {name.replace('_', ' ')}." for name in CLASSNAMES])
    images = random_images()
    assert torch.equal(coop.logits(images), zero_shot(images))  # the stock encode_text runs all 77 positions


def test_parity_casts_every_copy_so_the_gradient_sums_in_the_prompts_dtype():
    prompt = torch.randn(2, 8, generator=torch.Generator().manual_seed(0), requires_grad=True)
    upstream = torch.randn(5, 2, 8, generator=torch.Generator().manual_seed(1)).half()
    gradients = {}
    for reference_order in (False, True):
        prompt.grad = None
        copies = prompt_copies(prompt, 5, torch.float16, reference_order=reference_order)
        assert copies.shape == (5, 2, 8) and copies.dtype == torch.float16
        (copies * upstream).sum().backward()
        gradients[reference_order] = prompt.grad.clone()
    exact = (upstream.double()).sum(0)  # d/dprompt of sum(copies * upstream), in exact arithmetic
    assert torch.equal(gradients[True], upstream.float().sum(0))  # each copy's gradient in fp32, summed in fp32
    assert torch.equal(gradients[False], upstream.sum(0).float())  # summed in fp16, then cast
    assert (gradients[True].double() - exact).abs().max() <= (gradients[False].double() - exact).abs().max()

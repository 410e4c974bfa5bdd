"""Host models on a tiny CLIP: equivalences between hosts, where prompts enter, each host's own tensors and
dtypes (what every host must do is in test_host_contract.py)."""
import clip
import pytest
import torch
import torch.nn.functional as F
from support.hosts import CLASSNAMES, HOSTS, build_host, random_images

from trainers.hosts.kgcoop import kg_score
from trainers.prompted_clip import PromptedTextEncoder, build_tiny_clip, tokenize

pytestmark = pytest.mark.usefixtures("promptkd_teacher")  # HOSTS include PromptKD

def capture_inputs(modules, pre=True):
    """Inputs (or outputs) of ``modules``, recorded at every call; returns (records, hook handles)."""
    records, handles = {i: [] for i in range(len(modules))}, []
    for i, module in enumerate(modules):
        if pre:
            handles.append(module.register_forward_pre_hook(lambda m, args, i=i: records[i].append(args[0].detach())))
        else:
            handles.append(module.register_forward_hook(lambda m, args, out, i=i: records[i].append(out.detach())))
    return records, handles


def remove(handles):
    for handle in handles:
        handle.remove()


@torch.no_grad()
def test_ivlp_without_vision_prompts_at_text_depth_1_equals_coop():
    clip_model = build_tiny_clip()
    ivlp = build_host("IVLP", "TRAINER.IVLP.N_CTX_TEXT", 4, "TRAINER.IVLP.N_CTX_VISION", 0,
                      "TRAINER.IVLP.PROMPT_DEPTH_VISION", 0, "TRAINER.IVLP.PROMPT_DEPTH_TEXT", 1, clip_model=clip_model)
    coop = build_host("CoOp", clip_model=clip_model)  # CTX_INIT "a photo of a": 4 tokens
    assert not ivlp.image_encoder_prompted
    assert list(dict(ivlp.prompt_learner.named_parameters())) == ["ctx"]
    assert torch.equal(ivlp.prompt_learner.ctx, coop.prompt_learner.ctx)  # the same init rule for 4 tokens
    ctx = torch.randn(4, 64, generator=torch.Generator().manual_seed(3)) * 0.02
    ivlp.prompt_learner.ctx.copy_(ctx)
    coop.prompt_learner.ctx.copy_(ctx)
    images = random_images()
    assert torch.equal(ivlp.logits(images), coop.logits(images))


@torch.no_grad()
def test_promptsrc_logits_equal_ivlp_logits_given_the_same_prompts():
    clip_model = build_tiny_clip()
    src = build_host("PromptSRC", clip_model=clip_model, seed=1)
    ivlp = build_host("IVLP", "TRAINER.IVLP.N_CTX_TEXT", 4, "TRAINER.IVLP.N_CTX_VISION", 4,
                      clip_model=clip_model, seed=2)
    assert set(src.prompt_learner.state_dict()) == set(ivlp.prompt_learner.state_dict())
    assert not torch.equal(src.prompt_learner.vision_ctx, ivlp.prompt_learner.vision_ctx)
    ivlp.prompt_learner.load_state_dict(src.prompt_learner.state_dict())
    images = random_images()
    assert torch.equal(src.logits(images), ivlp.logits(images))
    assert torch.equal(src(images), ivlp(images))


@torch.no_grad()
def test_maple_layer0_vision_prompt_is_proj_of_ctx_and_deep_prompts_replace_tokens():
    clip_model = build_tiny_clip(vision_layers=3, transformer_layers=3)
    model = build_host("MaPLe", "TRAINER.MAPLE.PROMPT_DEPTH", 3, clip_model=clip_model)
    learner, n = model.prompt_learner, 2
    visual_blocks, text_blocks = clip_model.visual.transformer.resblocks, clip_model.transformer.resblocks
    ln_pre, h1 = capture_inputs([clip_model.visual.ln_pre])
    vision, h2 = capture_inputs([block.ln_1 for block in visual_blocks])
    text, h3 = capture_inputs([block.ln_1 for block in text_blocks])
    images = random_images(2)
    model.logits(images)
    remove(h1 + h2 + h3)

    sequence = ln_pre[0][0]  # (B, 1 + 16 patches + n, D), before ln_pre
    assert sequence.shape[1] == 1 + 16 + n
    assert torch.equal(sequence[:, -n:], learner.proj(learner.ctx).expand(2, -1, -1))
    for layer in (1, 2):
        x = vision[layer][0]  # (L, B, D): replaced, never appended
        assert x.shape[0] == 1 + 16 + n
        projected = learner.compound_prompt_projections[layer - 1](learner.compound_prompts_text[layer - 1])
        assert torch.equal(x[-n:], projected.unsqueeze(1).expand(-1, 2, -1))
        t = text[layer][0]  # (L, n_cls, D): positions 1..n replaced
        assert torch.equal(t[1:1 + n], learner.compound_prompts_text[layer - 1].unsqueeze(1).expand(-1, 4, -1))
    # The projections start as identical copies (reference behaviour) but are separate parameters.
    assert torch.equal(learner.compound_prompt_projections[0].weight, learner.compound_prompt_projections[1].weight)
    assert learner.compound_prompt_projections[0].weight is not learner.compound_prompt_projections[1].weight


@torch.no_grad()
@pytest.mark.parametrize("host", ["IVLP", "MaPLe"])
def test_prompts_beyond_the_depth_leave_the_remaining_blocks_untouched(host):
    clip_model = build_tiny_clip(vision_layers=3, transformer_layers=3)
    opts = {"IVLP": ("TRAINER.IVLP.PROMPT_DEPTH_TEXT", 2, "TRAINER.IVLP.PROMPT_DEPTH_VISION", 2),
            "MaPLe": ("TRAINER.MAPLE.PROMPT_DEPTH", 2)}[host]
    model = build_host(host, *opts, clip_model=clip_model)
    visual_blocks, text_blocks = clip_model.visual.transformer.resblocks, clip_model.transformer.resblocks
    vision_in, h1 = capture_inputs(visual_blocks)
    vision_out, h2 = capture_inputs(visual_blocks, pre=False)
    text_in, h3 = capture_inputs([block.ln_1 for block in text_blocks])
    model.logits(random_images(2))
    remove(h1 + h2 + h3)

    _, deep_vision = model.prompt_learner.vision_prompts()
    assert torch.equal(vision_in[1][0][-2:], deep_vision[0].unsqueeze(1).expand(-1, 2, -1))  # layer 1: replaced
    assert torch.equal(vision_in[2][0], vision_out[1][0])  # layer 2: block 1's output, prompts included
    x1 = text_in[1][0]
    mask = text_blocks[0].attn_mask[:x1.shape[0], :x1.shape[0]]
    assert torch.equal(text_in[2][0], PromptedTextEncoder._run_block(text_blocks[1], x1, mask))


def test_interface_flags_and_learnable_tensors():
    expected = {
        "IVLP": ({"ctx", "deep_text.0", "vision_ctx", "deep_vision.0"}, True, False),
        "PromptSRC": ({"ctx", "deep_text.0", "vision_ctx", "deep_vision.0"}, True, False),
        "MaPLe": ({"ctx", "proj.weight", "proj.bias", "compound_prompts_text.0",
                   "compound_prompt_projections.0.weight", "compound_prompt_projections.0.bias"}, True, False),
        "CoCoOp": ({"ctx", "meta_net.linear1.weight", "meta_net.linear1.bias", "meta_net.linear2.weight",
                    "meta_net.linear2.bias"}, False, True),
        "KgCoOp": ({"ctx"}, False, False),
    }
    for host, (names, image_prompted, text_on_image) in expected.items():
        model = build_host(host)
        assert set(model.prompt_learner.state_dict()) == names, host  # learnable tensors only
        assert {n for n, p in model.named_parameters() if p.requires_grad} == {f"prompt_learner.{n}" for n in names}
        assert model.image_encoder_prompted is image_prompted and model.text_depends_on_image is text_on_image


@torch.no_grad()
def test_cocoop_adds_one_meta_net_bias_per_image_to_every_context_token():
    model = build_host("CoCoOp")
    learner = model.prompt_learner
    images = random_images(3)
    logits = model.logits(images)
    image_features = F.normalize(model.encode_image(images), dim=-1)
    eot = learner.eot_indices()
    for b in range(3):
        bias = learner.meta_net(image_features[b])
        ctx = learner.ctx + bias  # the same bias on each of the 4 context tokens
        prompts = torch.cat([learner.token_prefix, ctx.expand(4, -1, -1), learner.token_suffix], dim=1)
        text = F.normalize(model.text_encoder(prompts, eot), dim=-1)
        torch.testing.assert_close(logits[b], model.logit_scale.exp() * image_features[b] @ text.t(), rtol=0, atol=1e-5)
        torch.testing.assert_close(model.logits(images[b:b + 1])[0], logits[b], rtol=0, atol=1e-5)
    per_image = model.encode_text(image_features=model.encode_image(images))
    assert per_image.shape == (3, 4, 32) and not torch.allclose(per_image[0], per_image[1])
    with pytest.raises(ValueError, match="depend on the image"):
        model.encode_text()


def test_kgcoop_score_and_loss():
    t, g = torch.randn(5, 8), torch.randn(5, 8)
    t_hat, g_hat = t / t.norm(dim=-1, keepdim=True), g / g.norm(dim=-1, keepdim=True)
    expected = 1 - (t_hat * g_hat).sum(-1).mean()
    torch.testing.assert_close(kg_score(t, g), expected)
    torch.testing.assert_close(kg_score(t, g), 0.5 * ((t_hat - g_hat) ** 2).sum(-1).mean())  # the paper's form
    assert kg_score(g, 3 * g).abs() < 1e-6

    clip_model = build_tiny_clip()
    model = build_host("KgCoOp", clip_model=clip_model)
    with torch.no_grad():
        stock = clip_model.encode_text(tokenize([f"a photo of a {n.replace('_', ' ')}." for n in CLASSNAMES]))
    torch.testing.assert_close(model.handcrafted_text_features, F.normalize(stock, dim=-1), rtol=0, atol=1e-5)
    images, labels = random_images(), torch.tensor([0, 3, 1])
    loss = model.loss(images, labels)
    text = model.encode_text()
    expected = F.cross_entropy(loss.logits, labels) + 8.0 * kg_score(text, model.handcrafted_text_features)
    torch.testing.assert_close(loss.total, expected)
    assert model.score(text).item() == pytest.approx(0.0, abs=1e-5)  # the init phrase equals the template


def half_clip():
    clip_model = build_tiny_clip()
    clip.model.convert_weights(clip_model)  # the released checkpoints' dtypes: fp16 but LayerNorms and embeddings
    return clip_model


@pytest.mark.parametrize("host", HOSTS)
def test_fp16_clip_trains_with_the_reference_prompt_dtypes(host):
    model = build_host(host, clip_model=half_clip())
    learner = model.prompt_learner
    fp32 = {"IVLP": ("deep_text.0", "vision_ctx"), "PromptSRC": ("deep_text.0", "deep_vision.0"),
            "MaPLe": ("compound_prompts_text.0", "compound_prompt_projections.0.weight"),
            "PromptKD": ("vision_ctx", "deep_vision.0", "projector.1.weight"),
            "MMRL": ("proj_rep",), "MMRLpp": ("proj_rep_A", "proj_rep_B")}.get(host, ())
    fp16 = {"MaPLe": ("proj.weight",), "CoCoOp": ("meta_net.linear1.weight",),
            "PromptKD": ("projector.0.weight", "projector.3.weight"),
            "MMRL": ("compound_rep_tokens", "compound_rep_tokens_r2tproj.0.weight"),
            "MMRLpp": ("compound_rep_tokens", "srra_r2tproj.weight", "srra_r2vproj.srra.0.A")}.get(host, ())
    if host not in ("PromptKD", "MMRL", "MMRLpp"):  # hosts without a text context (a teacher's text, a template)
        assert learner.ctx.dtype == torch.float16
    params = dict(learner.named_parameters())
    assert all(params[n].dtype == torch.float32 for n in fp32) and all(params[n].dtype == torch.float16 for n in fp16)
    loss = model.loss(random_images(), torch.tensor([0, 1, 2]))
    assert loss.logits.dtype == torch.float16 and torch.isfinite(loss.total)
    loss.total.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in learner.parameters())


@torch.no_grad()
@pytest.mark.parametrize("host,node", [("IVLP", "IVLP"), ("MaPLe", "MAPLE"), ("PromptSRC", "PROMPTSRC")])
def test_round_prompts_fp16_quantises_the_inserted_prompts(host, node):
    clip_model = build_tiny_clip()
    exact = build_host(host, clip_model=clip_model)
    rounded = build_host(host, f"TRAINER.{node}.ROUND_PROMPTS_FP16", True, clip_model=clip_model)
    rounded.prompt_learner.load_state_dict(exact.prompt_learner.state_dict())
    images = random_images()
    assert not torch.equal(rounded.logits(images), exact.logits(images))
    first, deep = rounded.prompt_learner.vision_prompts()
    rounded_text = [p.half().float() for p in rounded.prompt_learner.deep_text_prompts()]
    manual_image = rounded.image_encoder(images, first.half().float(), [p.half().float() for p in deep])
    manual_text = rounded.text_encoder(rounded.prompt_learner(), rounded.prompt_learner.eot_indices(), rounded_text)
    expected = rounded.logit_scale.exp() * F.normalize(manual_image, dim=-1) @ F.normalize(manual_text, dim=-1).t()
    assert torch.equal(rounded.logits(images), expected)

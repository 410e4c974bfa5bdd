"""DPC over each host with MODEL.REFERENCE_PARITY on its own command line: its P-scoring and its loss (DHNO's and
the host's term) go through the host's parity paths, and without the switch through none of them.

Stage 1 runs without the switch, so the DPC run also shows that the switch given at stage 2 implies the rounding
over a stage-1 record that says False (an override DPC may honour, and logs). The parity paths are watched where
they are: the text blocks' sequence length (all 77 positions), the casts of inserted prompts (``prompt_copies``),
CoCoOp's per-image head, PromptSRC's and KgCoOp's one normalisation, KgCoOp's fp16 hand-crafted features.
A DPC run that names neither the switch nor the rounding takes both from a stage-1 run made under the switch.
"""
import pytest
import torch
from support.hosts import HOSTS
from support.runs import run_train, train_argv

from datasets.shapes import make_shapes_dataset
from trainers.host_api.host_trainer import host_model_class
from trainers.hosts import cocoop, kgcoop, promptsrc
from trainers.prompted_clip import encoders

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("promptkd_teacher")]  # HOSTS include PromptKD

CONTEXT_LENGTH = 77


@pytest.fixture(scope="module")
def stage1(tmp_path_factory, tiny_clip_path):
    """One 1-epoch stage-1 run per host, without the switch."""
    tmp = tmp_path_factory.mktemp("parity_dpc")
    root = str(tmp / "data")
    make_shapes_dataset(root, colours=("red", "green", "blue"), shapes=("circle", "square"))
    runs = {}
    for host in HOSTS:
        runs[host] = tmp / host
        run_train(*train_argv(host, root, tiny_clip_path, runs[host], epochs=1))
    return {"root": root, "clip": tiny_clip_path, "tmp": tmp, "runs": runs}


class Watch:
    """Records the parity paths the code under watch takes."""

    def __init__(self, patch):
        self.text_lengths, self.casts, self.calls = [], [], {"per_image_head": 0, "normalised_once": 0}
        run_block, copies = encoders.PromptedTextEncoder._run_block, encoders.prompt_copies

        def watched_block(block, x, mask):
            self.text_lengths.append(x.shape[0])
            return run_block(block, x, mask)

        def watched_copies(prompt, n, dtype, round_fp16=False, reference_order=False):
            self.casts.append((round_fp16, reference_order))
            return copies(prompt, n, dtype, round_fp16, reference_order)

        patch.setattr(encoders.PromptedTextEncoder, "_run_block", staticmethod(watched_block))
        patch.setattr(encoders, "prompt_copies", watched_copies)
        patch.setattr(cocoop.CoCoOpCLIP, "per_image_head", self.counting("per_image_head",
                                                                          cocoop.CoCoOpCLIP.per_image_head))
        for module in (promptsrc, kgcoop):
            patch.setattr(module, "normalised_once", self.counting("normalised_once", module.normalised_once))

    def counting(self, name, function):
        def counted(*args):
            self.calls[name] += 1
            return function(*args)
        return counted

    def taken(self):
        """What was recorded since the last call, and a fresh start."""
        seen = {"text_lengths": set(self.text_lengths), "casts": set(self.casts), **self.calls}
        self.text_lengths.clear(), self.casts.clear()
        self.calls = dict.fromkeys(self.calls, 0)
        return seen


def expected_paths(host, parity):
    model_class = host_model_class(host)
    rounds = parity and model_class.reference_rounds_prompts_fp16
    casts = {(rounds, parity)} if host in ("IVLP", "MaPLe", "PromptSRC", "PromptKD", "MMRL", "MMRLpp") else set()
    return casts, {"CoCoOp": "per_image_head"}.get(host), {"PromptSRC": "normalised_once",
                                                           "KgCoOp": "normalised_once"}.get(host)


@pytest.mark.slow
@pytest.mark.parametrize("parity", [True, False])
@pytest.mark.parametrize("host", HOSTS)
def test_dpc_scores_and_trains_through_the_hosts_parity_paths(host, parity, stage1, monkeypatch):
    out = stage1["tmp"] / f"{host}_dpc_{parity}"
    trainer = run_train(*train_argv("DPC", stage1["root"], stage1["clip"], out, "TRAINER.DPC.BACKBONE_DIR",
                                    stage1["runs"][host], "TRAINER.DPC.HOST_LOSS_WEIGHT", 0.5,
                                    *(("MODEL.REFERENCE_PARITY", True) if parity else ()), flags=("--no-train",),
                                    epochs=None, print_freq=None))
    assert trainer.cfg.TRAINER.DPC.HOST == host and trainer.host.reference_parity is parity
    casts, per_image, normalised_once = expected_paths(host, parity)
    if host_model_class(host).reference_rounds_prompts_fp16:
        key = f"TRAINER.{host_model_class(host).config_node}.ROUND_PROMPTS_FP16"
        assert trainer.host.round_prompts_fp16 is parity
        log = (out / "log.txt").read_text()
        assert (f"{key} True (implied by MODEL.REFERENCE_PARITY)" in log) is parity
        assert (f"Override of the host's {key}: False in" in log) is parity  # stage 1 recorded False
    if host == "KgCoOp":
        assert trainer.host.handcrafted_text_features.dtype == (torch.float16 if parity else torch.float32)

    images, labels = trainer.parse_batch_train(next(iter(trainer.dm.train_loader_x)))  # a plain batch
    watch = Watch(monkeypatch)
    scores, anchor_features = trainer.score(images)  # P-scoring
    scoring = watch.taken()
    loss = trainer.dhno_loss(images, labels, anchor_features, num_anchors=len(labels))
    loss.backward()
    training = watch.taken()

    assert torch.isfinite(scores).all() and torch.isfinite(loss)
    # MMRL and MMRL++ insert their representation tokens into the text sequence: all 77 positions plus those (their
    # loss also encodes frozen CLIP's text, all 77 positions, under the switch)
    full_length = CONTEXT_LENGTH + (trainer.cfg.TRAINER[host].N_REP_TOKENS if host.startswith("MMRL") else 0)
    for phase in (scoring, training):
        assert phase["text_lengths"]  # text is encoded in both (P's text features once, P' each step)
        lengths = phase["text_lengths"]
        assert (full_length in lengths and lengths <= {CONTEXT_LENGTH, full_length}) is parity
        assert phase["casts"] == casts
        assert phase["per_image_head"] > 0 if parity and per_image else phase["per_image_head"] == 0
    assert scoring["normalised_once"] == 0  # scoring needs logits only: the head
    assert training["normalised_once"] > 0 if parity and normalised_once else training["normalised_once"] == 0


@pytest.mark.parametrize("written", [(), ("TRAINER.MAPLE.ROUND_PROMPTS_FP16", False)])
def test_dpc_without_the_switch_takes_it_and_the_rounding_from_a_parity_stage1(written, stage1, tiny_clip_path):
    """Stage 1 under the switch records the rounding it used (implied True, or a written False); a DPC run that
    names neither inherits both."""
    tmp = stage1["tmp"] / f"maple_parity_{bool(written)}"
    run_train(*train_argv("MaPLe", stage1["root"], tiny_clip_path, tmp / "stage1", "MODEL.REFERENCE_PARITY", True,
                          *written, epochs=1))
    trainer = run_train(*train_argv("DPC", stage1["root"], tiny_clip_path, tmp / "dpc", "TRAINER.DPC.BACKBONE_DIR",
                                    tmp / "stage1", flags=("--no-train",), epochs=None, print_freq=None))
    assert trainer.cfg.MODEL.REFERENCE_PARITY and trainer.host.reference_parity
    assert trainer.host.round_prompts_fp16 is (not written)
    assert "Override of the host's" not in (tmp / "dpc" / "log.txt").read_text()

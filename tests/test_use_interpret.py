"""``python -m tools.interpret``: a context initialised from "a photo of a" reads as those words before training;
a DPC run's P' - P is measured per tensor, token and channel."""
import pytest
import torch

from tools import interpret
from trainers import load_run
from trainers.inference.interpret import nearest_tokens, prompt_changes

pytest.importorskip("clip")


def test_an_initialised_context_reads_as_its_words(tuned_runs, capsys):
    classifier = load_run(tuned_runs["coop"], epoch=0, device="cpu")
    [tensors] = classifier.prompt_sets().values()
    nearest = nearest_tokens(tensors, classifier.clip_model.token_embedding.weight, k=3)
    assert [n.by_cosine[0][0] for n in nearest] == ["a", "photo", "of", "a"]
    assert [n.by_distance[0][0] for n in nearest] == ["a", "photo", "of", "a"]
    assert all(n.by_distance[0][1] == 0.0 and n.by_cosine[0][1] == pytest.approx(1.0) for n in nearest)
    assert interpret.main(["--model-dir", tuned_runs["coop"], "--load-epoch", "0"]) == 0
    printed = capsys.readouterr().out
    assert "CoOp prompts, as initialised (epoch 0)" in printed and "| prompt_learner.ctx[3] | a 1.00" in printed


def test_dpc_change_per_tensor_token_and_channel(tuned_runs, tmp_path, capsys):
    sets = load_run(tuned_runs["dpc"], device="cpu").prompt_sets()
    [change] = prompt_changes(sets["P"], sets["P'"])
    delta = sets["P'"]["prompt_learner.ctx"] - sets["P"]["prompt_learner.ctx"]
    assert change.norm == pytest.approx(delta.norm().item()) and change.norm > 0
    assert change.per_token == pytest.approx(delta.norm(dim=-1).tolist())
    assert change.channel_share.sum().item() == pytest.approx(1.0)
    assert torch.allclose(change.channel_share, delta.pow(2).sum(0) / delta.pow(2).sum())
    assert 1.0 <= change.effective_channels <= delta.shape[-1]
    figure = tmp_path / "interpret.png"
    assert interpret.main(["--model-dir", tuned_runs["dpc"], "--figure", str(figure)]) == 0
    printed = capsys.readouterr().out
    assert "P' (DPC's prompt)" in printed and "How P' moved from P (1 prompt tensors)" in printed
    assert figure.stat().st_size > 0


def test_one_channel_change_counts_one_effective_channel():
    frozen = {"ctx": torch.zeros(2, 8)}
    moved = torch.zeros(2, 8)
    moved[:, 3] = torch.tensor([3.0, 4.0])
    [change] = prompt_changes(frozen, {"ctx": moved})
    assert change.effective_channels == pytest.approx(1.0) and change.top_tenth_share == pytest.approx(1.0)
    assert change.per_token == pytest.approx([3.0, 4.0]) and change.norm == pytest.approx(5.0)

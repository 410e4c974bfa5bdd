"""``python -m tools.export``: the standalone classifier, used with plain ``clip`` as the README's lines use it, gives
``load_run``'s logits; hosts with prompted image towers export their prompts, which ``load_run`` reads back."""
import os
import re

import pytest
import torch
from support.paths import REPO_DIR
from support.runs import run_train, train_argv

from tools import export, predict
from trainers import load_run
from trainers.inference.classifier import standalone_host

clip = pytest.importorskip("clip")


def readme_snippet():
    """The README's lines that use an exported classifier with plain ``clip``."""
    with open(os.path.join(REPO_DIR, "README.md"), encoding="utf-8") as f:
        blocks = re.findall(r"^```python\n(.*?)^```", f.read(), flags=re.M | re.S)
    [snippet] = [block for block in blocks if 'clip.load(clf["clip_model"]' in block]
    return snippet


@pytest.mark.parametrize("run", ["coop", "dpc"])
def test_the_readme_lines_give_the_logits_of_predict(tuned_runs, tmp_path, run, capsys):
    base = load_run(tuned_runs["coop"]).classnames
    classnames = [base[0], "pink circle", base[1]]  # for DPC: both routes
    out = tmp_path / "classifier.pt"
    argv = ["--model-dir", tuned_runs[run], "--classnames", ",".join(classnames), "--out", str(out),
            "--save-clip", str(tmp_path / "clip.pt")]  # the tiny CLIP as clip.load reads a file
    assert export.main(argv) == 0
    assert "Wrote a standalone classifier" in capsys.readouterr().out
    image = predict.image_files([os.path.join(tuned_runs["root"], "shapes")])[0]
    snippet = readme_snippet().replace('"classifier.pt"', repr(str(out))).replace('"my_image.png"', repr(image))
    namespace = {}
    exec(compile(snippet, "README.md", "exec"), namespace)
    classifier = load_run(tuned_runs[run], device="cpu")
    expected = classifier.logits([image], classnames)
    difference = (namespace["logits"] - expected).abs().max().item()
    print(f"max |logit difference| plain clip vs predict ({run}): {difference:.2e}")
    assert difference <= 1e-5
    assert torch.load(out)["routes"] == ({base[0]: "base", "pink circle": "new", base[1]: "base"}
                                         if run == "dpc" else None)


def test_a_host_with_image_prompts_exports_its_prompts_for_load_run(tuned_runs, tmp_path, capsys):
    """MaPLe's prompts enter the image tower: its export is its prompts, which load_run reads back; its logits are
    its own evaluation's."""
    run, evaluated = tmp_path / "maple", tmp_path / "maple_eval"
    run_train(*train_argv("MaPLe", tuned_runs["root"], tuned_runs["clip"], run, epochs=1))
    evaluator = run_train(*train_argv("MaPLe", tuned_runs["root"], tuned_runs["clip"], evaluated,
                                     flags=("--eval-only", "--model-dir", run)))
    with torch.no_grad():
        expected = torch.cat([logits for logits, _ in evaluator.test_logits(evaluator.test_loader)])
    files = [item.impath for item in evaluator.test_loader.dataset.data_source]
    out = tmp_path / "prompts.pt"
    assert export.main(["--model-dir", str(run), "--out", str(out)]) == 0
    assert "no standalone classifier" in capsys.readouterr().out
    classifier = load_run(str(run), device="cpu")
    assert not classifier.standalone
    assert (classifier.logits(files) - expected).abs().max().item() <= 1e-5
    assert torch.equal(load_run(str(out), device="cpu").logits(files), classifier.logits(files))


def test_which_hosts_export_standalone():
    from trainers.host_api.host_trainer import host_model_class, registered_hosts

    standalone = {name for name in registered_hosts() if standalone_host(host_model_class(name))}
    assert {"CoOp", "KgCoOp"} <= standalone
    assert not standalone & {"CoCoOp", "MaPLe", "IVLP", "PromptSRC", "MMRL", "MMRLpp"}

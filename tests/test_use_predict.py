"""Using a finished run: ``load_run`` and ``python -m tools.predict`` agree with the run's own evaluation
(``--eval-only``) image by image, for a host run and for DPC's two routes; bad inputs are one line each."""
import json
import os

import pytest
import torch
from support.runs import run_train

from tools import predict
from trainers import load_run
from trainers.inference.finished_run import RunNotUsable
from trainers.run.errors import run_reporting_bad_input


@torch.no_grad()
def evaluation(tuned_runs, run, trainer, subsample, name):
    """The run's ``--eval-only`` test: (results.json, the test images, their classes, the test's logits)."""
    out = tuned_runs["tmp"] / name
    flags = ("--eval-only",) + (("--model-dir", run) if run else ())
    evaluator = run_train(*tuned_runs["args"](trainer, out, subsample, *flags))
    logits = torch.cat([batch_logits for batch_logits, _ in evaluator.test_logits(evaluator.test_loader)])
    items = evaluator.test_loader.dataset.data_source
    record = json.loads((out / "results.json").read_text())
    return record, [item.impath for item in items], [evaluator.lab2cname[item.label] for item in items], logits


def test_predict_agrees_with_the_evaluation_image_by_image(tuned_runs, tmp_path, capsys):
    record, files, truth, logits = evaluation(tuned_runs, tuned_runs["coop"], "CoOp", "base", "coop_eval")
    out = tmp_path / "preds.json"
    assert predict.main(["--model-dir", tuned_runs["coop"], *files, "--out", str(out), "--topk", "2"]) == 0
    content = json.loads(out.read_text())
    assert [p["file"] for p in content["predictions"]] == files
    predicted = [p["top"][0]["class"] for p in content["predictions"]]
    classnames = content["classnames"]
    assert predicted == [classnames[i] for i in logits.argmax(dim=-1).tolist()]
    accuracy = 100.0 * sum(p == t for p, t in zip(predicted, truth)) / len(truth)
    assert f"{accuracy:.2f}" == f"{record['accuracy']:.2f}" and record["n"] == len(files)
    assert content["routes"] is None and content["skipped"] == []
    assert "| file" in capsys.readouterr().out


@pytest.mark.parametrize("subsample", ["base", "new"])
def test_dpc_predictions_equal_its_evaluation_on_each_route(tuned_runs, subsample):
    record, files, _, logits = evaluation(tuned_runs, tuned_runs["dpc"], "DPC", subsample, f"dpc_eval_{subsample}")
    classifier = load_run(tuned_runs["dpc"], device="cpu")
    names = record["classnames"]
    assert classifier.routes(names) == [subsample] * len(names)
    ours = classifier.logits(files, names)
    assert (ours - logits).abs().max().item() <= 1e-5
    assert torch.equal(ours.argmax(dim=-1), logits.argmax(dim=-1))


def test_zero_shot_clip_predicts_as_its_evaluation(tuned_runs):
    out = tuned_runs["tmp"] / "zero_shot"
    record, files, _, logits = evaluation(tuned_runs, None, "ZeroshotCLIP", "new", "zero_shot")
    classifier = load_run(str(out), device="cpu")
    assert classifier.standalone and classifier.routes() == [None] * len(record["classnames"])
    assert (classifier.logits(files) - logits).abs().max().item() <= 1e-5


def test_a_mixed_class_list_takes_each_route_per_column(tuned_runs):
    classifier = load_run(tuned_runs["dpc"], device="cpu")
    base = classifier.classnames
    new = ["pink circle", "grey square"]
    images = torch.randn(3, 3, 32, 32)
    mixed = classifier.logits(images, [new[0], base[0], new[1], base[1]])
    assert classifier.routes([new[0], base[0]]) == ["new", "base"]
    assert torch.allclose(mixed[:, [1, 3]], classifier.logits(images, base[:2]), atol=1e-6)
    assert torch.allclose(mixed[:, [0, 2]], classifier.logits(images, new), atol=1e-6)
    assert torch.allclose(classifier.predict(images, base).sum(dim=-1), torch.ones(3))


def test_the_api_takes_paths_pil_images_and_tensors(tuned_runs):
    from PIL import Image

    classifier = load_run(tuned_runs["coop"], device="cpu")
    files = predict.image_files([os.path.join(tuned_runs["root"], "shapes")])[:3]
    from_paths = classifier.predict(files)
    from_pil = classifier.predict([Image.open(f) for f in files])
    from_tensor = classifier.predict(torch.stack([classifier.transform(Image.open(f).convert("RGB")) for f in files]))
    assert torch.equal(from_paths, from_pil) and torch.equal(from_paths, from_tensor)
    text = classifier.text_features()
    assert text.shape == (len(classifier.classnames), 32)
    assert torch.allclose(text.norm(dim=-1), torch.ones(len(text)))
    assert classifier.image_features(files).shape == (3, 32)


def run_cli(argv, capsys):
    status = run_reporting_bad_input(lambda: predict.main([str(a) for a in argv]), program="python -m tools.predict")
    captured = capsys.readouterr()
    return status, captured.out, [line for line in captured.err.splitlines() if "--debug" not in line]


def test_an_unreadable_image_is_named_skipped_and_listed(tuned_runs, tmp_path, capsys):
    good = predict.image_files([os.path.join(tuned_runs["root"], "shapes")])[:2]
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    out = tmp_path / "preds.csv"
    status, printed, errors = run_cli(["--model-dir", tuned_runs["coop"], good[0], broken, good[1], "--out", out],
                                      capsys)
    assert status == 0
    assert errors == [f"Skipped: Cannot read the image {broken} (cannot identify image file '{broken}')"]
    assert f"Skipped 1 file(s) that could not be read: {broken}" in printed
    rows = out.read_text().splitlines()
    assert [row.split(",")[0] for row in rows[1:]] == good


@pytest.mark.parametrize("case, expected", [
    ("unfinished", "is not a finished run (no results.json)"),
    ("empty", "The class list is empty"),
    ("duplicates", "names 'red circle' more than once"),
    ("backbone", "are not the backbone"),
])
def test_bad_inputs_are_one_line(tuned_runs, tmp_path, capsys, case, expected):
    image = predict.image_files([os.path.join(tuned_runs["root"], "shapes")])[0]
    argv = ["--model-dir", tuned_runs["coop"], image]
    if case == "unfinished":
        argv[1] = tmp_path
    elif case == "empty":
        argv += ["--classnames", " , "]
    elif case == "duplicates":
        argv += ["--classnames", "red circle,blue square,red circle"]
    else:
        argv += ["--backbone", tmp_path / "other_clip.pt"]
    status, _, errors = run_cli(argv, capsys)
    assert status == 2 and len(errors) == 1 and expected in errors[0], errors


def test_an_evaluation_folder_points_to_the_run_it_evaluated(tuned_runs):
    out = tuned_runs["tmp"] / "coop_eval_new"
    run_train(*tuned_runs["args"]("CoOp", out, "new", "--eval-only", "--model-dir", tuned_runs["coop"]))
    with pytest.raises(RunNotUsable, match="holds an evaluation, not a training run"):
        load_run(out)

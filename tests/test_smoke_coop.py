"""The first vertical slice: CoOp trains on base classes and evaluates on new classes from its checkpoint."""
import json
import os

from support.runs import run_train, train_argv


def test_coop_base_then_new_writes_results(tmp_path, shapes_root, tiny_clip_path):
    out = tmp_path / "base"
    run_train(*train_argv("CoOp", shapes_root, tiny_clip_path, out, epochs=2))
    assert os.path.isfile(out / "prompt_learner" / "model.pth.tar-2")
    base = json.loads((out / "results.json").read_text())
    assert base["subsample_classes"] == "base" and base["n"] == 9  # 3 base classes x 3 test images

    new_out = tmp_path / "new"
    run_train("--eval-only", "--model-dir", out, "--load-epoch", 2,
              *train_argv("CoOp", shapes_root, tiny_clip_path, new_out, subsample="new"))
    new = json.loads((new_out / "results.json").read_text())
    assert new["subsample_classes"] == "new" and new["n"] == 9
    assert 0.0 <= new["accuracy"] <= 100.0

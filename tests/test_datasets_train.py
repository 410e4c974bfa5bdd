"""``train.py --trainer ZeroshotCLIP --eval-only`` end to end on every benchmark's generated tree."""
import json

import pytest
from support.dataset_fixtures import BUILDERS, YAML_FILES
from support.runs import COOP_CPU_YAML, run_train


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_zeroshot_eval_runs_on_each_dataset(tmp_path, tiny_clip_path, name):
    root = tmp_path / "data"
    expected = BUILDERS[name](str(root))
    out = tmp_path / "out"
    trainer = run_train(
        "--root", root, "--seed", 1, "--trainer", "ZeroshotCLIP", "--eval-only",
        "--dataset-config-file", f"configs/datasets/{YAML_FILES[name]}.yaml", "--config-file", COOP_CPU_YAML,
        "--output-dir", out, "MODEL.BACKBONE.NAME", tiny_clip_path, "DATASET.GENERATE_SPLIT", True,
    )
    assert trainer.dm.dataset.classnames == expected.classnames
    record = json.loads((out / "results.json").read_text())
    assert record["dataset"] == name
    assert record["n"] == sum(expected.counts["test"])
    split_file = getattr(trainer.dm.dataset, "split_path", None)  # readers with a published split file
    if split_file and "split_generated_" in split_file:
        assert record["split_generated"] == split_file  # a generated tree's split: drawn here, and recorded

"""``python -m tools.demo --ablation`` on a reduced demo world (2 shots, 1 epoch, seed 1): the host and the five
rows, each line of the printed table the accuracies its own runs recorded, then a rerun that only reads them."""
import json
import os

import pytest

from datasets.demo_world import make_demo_world
from tools import output_folders as layout
from tools.demo import cli as demo
from tools.paper_experiments import ABLATION_ROWS
from tools.tables.figure import matplotlib_available

ROWS = ["CoOp", *(label for label, _ in ABLATION_ROWS)]


@pytest.fixture
def reduced_demo(tmp_path, monkeypatch):
    """The demo's configs at one epoch, 2 shots, on a world of 8 training and 4 test images per class."""
    root = tmp_path / "data"
    make_demo_world(str(root), counts={"train": 8, "val": 2, "test": 4})
    for attr in ("HOST_CONFIG", "DPC_CONFIG"):
        with open(getattr(demo, attr)) as f:
            text = f.read().replace("MAX_EPOCH: 25", "MAX_EPOCH: 1").replace("MAX_EPOCH: 8", "MAX_EPOCH: 1")
        path = tmp_path / os.path.basename(getattr(demo, attr))  # same stem: same <cfg> folder name
        path.write_text(text)
        monkeypatch.setattr(demo, attr, str(path))
    monkeypatch.setattr(demo, "SHOTS", 2)
    return root, tmp_path / "out"


def recorded(out, phase, method, cfg):
    folder = layout.run_dir(str(out), layout.BASE2NEW, phase, "demo_world", 2, method, cfg, 1)
    with open(os.path.join(folder, "results.json")) as f:
        return json.load(f)["accuracy"]


def table_cells(printed):
    lines = [line for line in printed.splitlines() if line.startswith("| ") and "Row" not in line]
    return {cells[0]: cells[1:] for cells in ([c.strip() for c in line.strip("|").split("|")] for line in lines)}


@pytest.mark.slow  # trains the ablation's rows on a reduced demo world
def test_demo_ablation_prints_each_rows_own_runs(reduced_demo, capsys):
    root, out = reduced_demo
    argv = ["--ablation", "--seeds", "1", "--root", str(root), "--out", str(out)]
    assert demo.main(argv) == 0
    printed = capsys.readouterr().out
    # CoOp's two runs, then per seed 4 trainings (the plain DPC run among them) and 10 evaluations
    assert "16 runs: 16 ran, 0 already finished (skipped), 0 failed, 0 blocked" in printed
    cells = table_cells(printed)
    assert list(cells) == ROWS
    expected = {"CoOp": (recorded(out, "train", "CoOp", "coop"), recorded(out, "test", "CoOp", "coop"))}
    for label, settings in ABLATION_ROWS:
        cfg = layout.variant_dir_name("dpc", settings)
        expected[label] = (recorded(out, "train", "DPC_CoOp", cfg), recorded(out, "test", "DPC_CoOp", cfg))
    for label, (base, new) in expected.items():
        assert cells[label][:2] == [f"{base:.2f} ± 0.00", f"{new:.2f} ± 0.00"], label
        assert cells[label][2] == f"{2 * base * new / (base + new):.2f}", label
    # ω_n = 0 decouples new classes: the host's own new-class accuracy, trained with DHNO or without
    assert expected["DPC"][1] == expected["TS+WE+DE"][1] == expected["CoOp"][1]
    if matplotlib_available():
        assert (out / "demo_ablation_figure.png").stat().st_size > 10_000

    assert demo.main(argv) == 0  # finished runs are only read back
    again = capsys.readouterr().out
    assert "16 runs: 0 ran, 16 already finished (skipped)" in again and table_cells(again) == cells


def test_demo_ablation_table_names_rows_without_every_seed(tmp_path):
    """From hand-made records: a row that lacks a seed says so under the table, a row with no run at all too."""
    from support.records import finished_record

    from tools.demo.ablation import demo_ablation_table
    from trainers.run.record import write_results

    def put(method, cfg, seed, base, new):
        for phase, accuracy, subsample in (("train", base, "base"), ("test", new, "new")):
            folder = layout.run_dir(str(tmp_path), layout.BASE2NEW, phase, "demo_world", 16, method, cfg, seed)
            write_results(folder, finished_record(accuracy, seed=seed, subsample=subsample))

    for seed in (1, 2):
        put("CoOp", "coop", seed, 70.0 + seed, 70.0)
    label, settings = ABLATION_ROWS[-1]  # DPC, seed 1 only
    put("DPC_CoOp", layout.variant_dir_name("dpc", settings), 1, 72.0, 70.0)
    text = demo_ablation_table(str(tmp_path), [1, 2], "demo_world")
    cells = table_cells(text)
    assert list(cells) == ROWS and cells["CoOp"][0] == "71.50 ± 0.50 (71.00 / 72.00)"
    assert cells["DPC"][:2] == ["72.00 ± 0.00", "70.00 ± 0.00"] and cells["TS"][0] == "-"
    assert "DPC_CoOp (TS): no run found" in text and "DPC: seeds 1 of 1 2" in text

"""Table arithmetic on hand-made results.json files: the paper's HM and average-row rules, the paper lookup,
and the markdown / CSV / JSON outputs."""
import csv
import io
import json
import math

import pytest
from support.records import finished_record

from tools import output_folders as layout
from tools.pipeline import presets
from tools.tables import cli as tables
from tools.tables.arithmetic import TableError, harmonic_mean, mean_std
from tools.tables.cli import main as tables_main
from tools.tables.figure import figure_groups, matplotlib_available
from tools.tables.paper import PaperResults
from tools.tables.render import to_csv, to_markdown
from tools.tables.report import build_report
from trainers.run.record import write_results

PAPER = PaperResults.load()
# config stem -> DATASET.NAME, in the paper's order
DATASET_NAMES = dict(zip(presets.BASE2NEW_DATASETS, PAPER.datasets))


def put(out, mode, phase, dataset, method, seed, accuracy, cfg="cfg_a", shots=16, name=None):
    directory = layout.run_dir(str(out), mode, phase, dataset, shots, method, cfg, seed)
    subsample = {"train": "base", "test": "new"}[phase] if mode == layout.BASE2NEW else "all"
    write_results(directory, finished_record(accuracy, name or DATASET_NAMES.get(dataset, dataset), seed, subsample,
                                             num_shots=shots))
    return directory


def put_b2n(out, dataset, method, seed, base, new, **kw):
    put(out, layout.BASE2NEW, "train", dataset, method, seed, base, **kw)
    put(out, layout.BASE2NEW, "test", dataset, method, seed, new, **kw)


@pytest.fixture
def two_datasets(tmp_path):
    """CoOp on Caltech101 (base 90/100, new 50/70) and OxfordPets (base 60/60, new 90/70); DPC on Caltech101."""
    put_b2n(tmp_path, "caltech101", "CoOp", 1, 90.0, 50.0)
    put_b2n(tmp_path, "caltech101", "CoOp", 2, 100.0, 70.0)
    put_b2n(tmp_path, "oxford_pets", "CoOp", 1, 60.0, 90.0)
    put_b2n(tmp_path, "oxford_pets", "CoOp", 2, 60.0, 70.0)
    put_b2n(tmp_path, "caltech101", "DPC_CoOp", 1, 99.0, 60.0, cfg="dpc_cfg")
    return tmp_path


def markdown_rows(text):
    """The cells of every body row of the markdown tables in ``text``."""
    lines = [line for line in text.splitlines() if line.startswith("|") and not line.startswith("|--")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines if "Dataset" not in line]


def tables_by_method(report):
    return {t["method"]: t for t in report["tables"]}


def test_harmonic_mean_and_population_std():
    assert harmonic_mean(80.0, 60.0) == pytest.approx(2 * 80 * 60 / 140)
    assert harmonic_mean(0.0, 0.0) == 0.0
    assert harmonic_mean(None, 50.0) is None
    assert mean_std([90.0, 100.0]) == (95.0, 5.0)  # population std, as numpy.std / parse_test_res.py
    assert mean_std([]) == (None, None)


def test_per_dataset_hm_is_the_hm_of_the_means(two_datasets):
    table = tables_by_method(build_report(str(two_datasets), paper=PAPER))["CoOp"]
    caltech, pets = table["rows"]
    assert (caltech["label"], pets["label"]) == ("Caltech101", "OxfordPets")  # the paper's order and labels
    assert (caltech["base_mean"], caltech["base_std"], caltech["new_mean"], caltech["new_std"]) == (95, 5, 60, 10)
    assert caltech["hm"] == pytest.approx(11400 / 155)  # HM(95, 60) = 73.548..., not the mean of per-seed HMs
    assert caltech["hm_seed_mean"] == pytest.approx((9000 / 140 + 14000 / 170) / 2)  # 73.319..., for reference
    assert (pets["base_mean"], pets["base_std"], pets["new_mean"], pets["new_std"]) == (60, 0, 80, 10)
    assert pets["hm"] == pytest.approx(9600 / 140)
    assert caltech["seeds_base"] == caltech["seeds_new"] == [1, 2]


def test_average_row_is_hm_of_mean_base_and_mean_new(two_datasets):
    average = tables_by_method(build_report(str(two_datasets), paper=PAPER))["CoOp"]["average"]
    assert average["base_mean"] == pytest.approx(77.5)
    assert average["new_mean"] == pytest.approx(70.0)
    assert average["hm"] == pytest.approx(10850 / 147.5)  # 73.559..., not the mean of the rows' HMs (71.06)
    # Two datasets are not the paper's eleven: no paper average to compare with.
    assert average["paper_hm"] is None and average["diff_hm"] is None
    assert average["label"] == "Average (2 datasets)"


def test_paper_columns_and_differences(two_datasets):
    tables = tables_by_method(build_report(str(two_datasets), paper=PAPER))
    caltech = tables["CoOp"]["rows"][0]
    assert (caltech["paper_base"], caltech["paper_new"], caltech["paper_hm"]) == (97.55, 94.65, 96.08)
    assert caltech["diff_base"] == pytest.approx(95 - 97.55)
    assert caltech["diff_hm"] == pytest.approx(11400 / 155 - 96.08)
    dpc = tables["DPC_CoOp"]
    assert dpc["paper_method"] == "CoOp+DPC"
    assert (dpc["rows"][0]["paper_base"], dpc["rows"][0]["diff_base"]) == (98.58, pytest.approx(99 - 98.58))


def test_paper_numbers_pass_through_our_rules_to_the_paper_average(tmp_path):
    """Fed the paper's own per-dataset Base/New, our average row must give the paper's average row."""
    for method, key in (("CoOp", "CoOp"), ("DPC_PromptSRC", "PromptSRC+DPC")):
        for dataset, name in DATASET_NAMES.items():
            base, new, hm = PAPER.row(key, name)
            put_b2n(tmp_path, dataset, method, 1, base, new)
    tables = tables_by_method(build_report(str(tmp_path), paper=PAPER))
    for method, key in (("CoOp", "CoOp"), ("DPC_PromptSRC", "PromptSRC+DPC")):
        table = tables[method]
        for row in table["rows"]:
            assert row["hm"] == pytest.approx(row["paper_hm"], abs=0.006)  # paper's HM = HM of its B and N
        average = table["average"]
        assert average["label"] == "Average" and average["n_datasets"] == 11
        assert (average["paper_base"], average["paper_new"], average["paper_hm"]) == PAPER.average(key)
        for column in ("base", "new", "hm"):
            assert abs(average[f"diff_{column}"]) < 0.006, (method, column)


def test_cli_writes_markdown_csv_json(two_datasets, tmp_path, capsys):
    md, csv_path, js = tmp_path / "t.md", tmp_path / "t.csv", tmp_path / "t.json"
    assert tables_main([str(two_datasets), "--host", "CoOp", "--markdown", str(md), "--csv", str(csv_path),
                        "--json", str(js)]) == 0
    printed = capsys.readouterr().out
    assert printed.strip() == md.read_text().strip()
    assert "### CoOp: base-to-new, 16 shots (config: cfg_a)" in printed
    rows = {cells[0]: cells[1:] for cells in markdown_rows(printed.split("### CoOp+DPC")[0])}
    assert rows["Caltech101"] == ["1,2", "95.00 ± 5.00 (90.00 / 100.00)", "60.00 ± 10.00 (50.00 / 70.00)", "73.55",
                                  "97.55", "94.65", "96.08",
                                  "-2.55", "-34.65", "-22.53"]
    assert rows["**Average (2 datasets)**"][:4] == ["", "77.50", "70.00", "73.56"]
    assert "### CoOp+DPC: base-to-new, 16 shots (config: dpc_cfg)" in printed

    rows = list(csv.DictReader(io.StringIO(csv_path.read_text())))
    coop = [r for r in rows if r["method"] == "CoOp"]
    assert [r["dataset"] for r in coop] == ["caltech101", "oxford_pets", "average"]
    assert float(coop[0]["hm"]) == pytest.approx(11400 / 155)
    assert coop[0]["seeds_base"] == "1 2" and float(coop[0]["paper_hm"]) == 96.08
    assert coop[0]["base_per_seed"] == "90.0 100.0" and coop[0]["new_per_seed"] == "50.0 70.0"
    assert float(coop[2]["hm"]) == pytest.approx(10850 / 147.5) and coop[2]["paper_hm"] == ""
    assert {r["method"] for r in rows} == {"CoOp", "DPC_CoOp"}

    report = json.loads(js.read_text())
    assert report["tables"][0]["rows"][0]["base_per_seed"] == [90.0, 100.0]


def test_several_configs_of_one_method_need_a_choice(two_datasets, capsys):
    put_b2n(two_datasets, "caltech101", "CoOp", 1, 10.0, 10.0, cfg="cfg_b")
    assert tables_main([str(two_datasets)]) == 2
    assert "several configs (cfg_a, cfg_b)" in capsys.readouterr().err
    assert tables_main([str(two_datasets), "--cfg", "cfg_b", "--quiet", "--json", str(two_datasets / "b.json")]) == 0
    report = json.loads((two_datasets / "b.json").read_text())
    (table,) = report["tables"]
    assert table["rows"][0]["base_mean"] == 10.0


def test_unfinished_runs_are_not_counted(two_datasets):
    # a run directory without a valid results.json (killed, or still running)
    broken = layout.run_dir(str(two_datasets), layout.BASE2NEW, "train", "caltech101", 16, "CoOp", "cfg_a", 3)
    (two_datasets / broken).mkdir(parents=True)
    (two_datasets / broken / "results.json").write_text("{not json")
    table = tables_by_method(build_report(str(two_datasets), paper=PAPER))["CoOp"]
    assert table["rows"][0]["seeds_base"] == [1, 2]


def test_figure_is_optional(two_datasets, tmp_path, capsys, monkeypatch):
    figure = tmp_path / "figure.png"
    monkeypatch.setattr(tables, "matplotlib_available", lambda: False)
    assert tables_main([str(two_datasets), "--quiet", "--figure", str(figure)]) == 0
    assert not figure.exists() and 'pip install ".[plot]"' in capsys.readouterr().err


@pytest.mark.skipif(not matplotlib_available(), reason="matplotlib is a test extra: pip install '.[test]'")
def test_figure_shows_base_new_and_hm_per_method_beside_the_paper(two_datasets, tmp_path, capsys):
    figure = tmp_path / "figure.png"
    assert tables_main([str(two_datasets), "--quiet", "--figure", str(figure)]) == 0
    assert f"Figure written to {figure}" in capsys.readouterr().out and figure.stat().st_size > 10_000
    labels, methods, values = figure_groups(build_report(str(two_datasets), paper=PAPER))
    assert labels[-1] == "Average" and len(labels) == 3  # two datasets and their average
    assert methods == ["CoOp", "CoOp+DPC"]
    caltech = labels.index(next(label for label in labels if "Caltech" in label))
    value, spread, paper = values["CoOp"]["base"][caltech]
    assert (value, spread) == (95.0, 5.0) and paper == PAPER.row("CoOp", "Caltech101")[0]
    value, spread, paper = values["CoOp"]["hm"][caltech]  # HM of the means; spread of the per-seed HMs
    assert value == pytest.approx(2 * 95 * 60 / 155) and spread > 0


def test_a_single_dataset_has_no_average_group(tmp_path):
    put_b2n(tmp_path, "caltech101", "CoOp", 1, 90.0, 50.0)
    labels, _, _ = figure_groups(build_report(str(tmp_path), paper=PAPER))
    assert labels == ["Caltech101"]


def test_cross_dataset_and_dg_tables(tmp_path):
    xd = layout.CROSS_DATASET
    for method, offset in (("CoOp", 0.0), ("DPC_CoOp", 1.0)):
        for seed, (source, caltech, pets, v2) in {1: (70, 90, 80, 60), 2: (72, 92, 84, 62)}.items():
            put(tmp_path, xd, "train", "imagenet", method, seed, source + offset)
            put(tmp_path, xd, "test", "caltech101", method, seed, caltech + offset)
            put(tmp_path, xd, "test", "oxford_pets", method, seed, pets + offset)
            put(tmp_path, xd, "test", "imagenetv2", method, seed, v2 + offset)
    report = build_report(str(tmp_path), xd)
    rows = {row["dataset"]: row["methods"] for row in report["rows"]}
    assert list(rows) == ["imagenet (source)", "caltech101", "oxford_pets"]  # DG targets have their own table
    assert rows["caltech101"]["CoOp"]["mean"] == 91.0 and rows["caltech101"]["CoOp"]["std"] == 1.0
    assert rows["caltech101"]["CoOp"]["per_seed"] == [90.0, 92.0]
    markdown = {cells[0]: cells for cells in markdown_rows(to_markdown(report))}
    assert markdown["caltech101"][2] == "91.00 ± 1.00 (90.00 / 92.00)"  # each seed's number beside the mean
    assert "caltech101,16,CoOp,91.0,1.0,1 2,90.0 92.0" in to_csv(report)
    assert report["averages"][0]["methods"] == {"CoOp": 86.5, "DPC_CoOp": 87.5}  # targets only, not the source
    dg = build_report(str(tmp_path), layout.DOMAIN_GENERALIZATION)
    assert [row["dataset"] for row in dg["rows"]] == ["imagenet (source)", "imagenetv2"]
    assert dg["averages"][0]["methods"]["CoOp"] == 61.0


def test_few_shot_table_averages_per_shot_count(tmp_path):
    fs = layout.FEW_SHOT
    for shots, (caltech, pets) in {1: (80, 60), 16: (95, 85)}.items():
        put(tmp_path, fs, "train", "caltech101", "CoOp", 1, caltech, shots=shots)
        put(tmp_path, fs, "train", "oxford_pets", "CoOp", 1, pets, shots=shots)
    report = build_report(str(tmp_path), fs)
    assert [(r["dataset"], r["shots"]) for r in report["rows"]] == [
        ("caltech101", 1), ("oxford_pets", 1), ("caltech101", 16), ("oxford_pets", 16)]
    assert [(a["shots"], a["methods"]["CoOp"]) for a in report["averages"]] == [(1, 70.0), (16, 90.0)]


def test_two_results_for_one_seed_are_an_error(tmp_path):
    put_b2n(tmp_path, "caltech101", "CoOp", 1, 90.0, 50.0, shots=16)
    with pytest.raises(TableError, match="Two .* results for seed 1"):
        from tools.tables.arithmetic import base2new_rows
        from tools.tables.results import collect
        results = collect(str(tmp_path), layout.BASE2NEW)
        base2new_rows(results + results[:1], PAPER)
    assert math.isfinite(build_report(str(tmp_path), paper=PAPER)["tables"][0]["rows"][0]["hm"])


def test_runs_outside_the_layout_are_an_error_that_names_the_layout(tmp_path, capsys):
    write_results(str(tmp_path / "my_runs" / "coop_seed1"), finished_record(70.0))
    assert tables_main([str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "base2new/train_base/<dataset>/shots_<K>/<Method>/<cfg>/seed<S>/results.json" in err
    assert "1 results.json file(s) lie elsewhere" in err

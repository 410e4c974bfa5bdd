"""The ablation and sweep tables and figures from hand-made results.json files in ``<cfg>@KEY=VALUE`` folders, and
the note naming every method or row that has not finished."""
import csv
import io

import pytest
from support.records import finished_record
from test_tables import DATASET_NAMES, PAPER, markdown_rows, put_b2n

from tools import output_folders as layout
from tools.paper_experiments import ABLATION_ROWS, WEIGHT_BASE, WEIGHT_NEW
from tools.tables.axes import accuracy_limits, axis_note
from tools.tables.cli import main as tables_main
from tools.tables.figure import matplotlib_available
from tools.tables.figure_variants import panel_values
from tools.tables.variants import ablation_report, normal_value, sweep_report
from trainers.run.record import write_results

DPC_CFG = "dpc_cfg"
ROW_SETTINGS = dict(ABLATION_ROWS)


def put_row(out, dataset, settings, seed, base, new, train_settings=None, method="DPC_CoOp"):
    """A DPC run with extra settings: its base folder named after ``train_settings`` (default: all of them)."""
    train_cfg = layout.variant_dir_name(DPC_CFG, settings if train_settings is None else train_settings)
    put_b2n_split(out, dataset, method, seed, base, new, train_cfg, layout.variant_dir_name(DPC_CFG, settings))


def put_b2n_split(out, dataset, method, seed, base, new, train_cfg, test_cfg):
    name = DATASET_NAMES.get(dataset, dataset)
    for phase, cfg, accuracy, subsample in (("train", train_cfg, base, "base"), ("test", test_cfg, new, "new")):
        if accuracy is not None:
            directory = layout.run_dir(str(out), layout.BASE2NEW, phase, dataset, 16, method, cfg, seed)
            write_results(directory, finished_record(accuracy, name, seed, subsample))


@pytest.fixture
def ablation_runs(tmp_path):
    """CoOp and the five rows on Caltech101 and OxfordPets, seeds 1 and 2: row i adds i points to CoOp's base
    (70/80) and, on seed 2, one more point; new accuracy is 60 + i on both seeds."""
    for dataset, shift in (("caltech101", 0.0), ("oxford_pets", 10.0)):
        for seed in (1, 2):
            put_b2n(tmp_path, dataset, "CoOp", seed, 70.0 + shift + (seed - 1), 60.0, cfg="coop_cfg")
            for i, (_, settings) in enumerate(ABLATION_ROWS, start=1):
                put_row(tmp_path, dataset, settings, seed, 70.0 + shift + i + (seed - 1), 60.0 + i)
    return tmp_path


def test_ablation_table_has_the_host_then_each_row_with_seed_spread(ablation_runs):
    (table,) = ablation_report(str(ablation_runs), paper=PAPER)["tables"]
    assert [cell["row"] for cell in table["average"]] == ["CoOp", "TS", "TS+DHNO", "TS+DHNO+WE", "TS+WE+DE", "DPC"]
    dpc = table["average"][-1]
    # base: (70+5, 80+5) on seed 1 and one more on seed 2 -> seed averages 80 and 81
    assert dpc["base_per_seed"] == [80.0, 81.0] and (dpc["base_mean"], dpc["base_std"]) == (80.5, 0.5)
    assert (dpc["new_mean"], dpc["new_std"]) == (65.0, 0.0)
    assert dpc["hm"] == pytest.approx(2 * 80.5 * 65 / 145.5)
    caltech = {cell["row"]: cell for cell in table["datasets"][0]["rows"]}
    assert table["datasets"][0]["label"] == "Caltech101"
    assert caltech["TS"]["base_per_seed"] == [71.0, 72.0] and caltech["TS"]["new_mean"] == 61.0
    assert caltech["CoOp"]["base_per_seed"] == [70.0, 71.0]
    # two datasets are not the paper's eleven: no paper numbers, and the note says why
    assert dpc["paper_hm"] is None and "compared only with an average over the same 11" in table["paper_note"]


def test_ablation_markdown_and_csv(ablation_runs, capsys, tmp_path):
    csv_path = tmp_path / "ablation.csv"
    assert tables_main([str(ablation_runs), "--ablation", "--csv", str(csv_path)]) == 0
    printed = capsys.readouterr().out
    assert "### Ablation of DPC's components over CoOp, base-to-new, 16 shots: Average (2 datasets)" in printed
    average = printed.split("#### ")[0]
    rows = {cells[0]: cells[1:] for cells in markdown_rows(average) if cells[0] != "Row"}
    assert rows["DPC"][:4] == ["1,2", "80.50 ± 0.50 (80.00 / 81.00)", "65.00 ± 0.00 (65.00 / 65.00)",
                              "71.92"]  # HM(80.5, 65)
    assert "#### Caltech101" in printed and "#### OxfordPets" in printed
    rows = list(csv.DictReader(io.StringIO(csv_path.read_text())))
    ts = next(r for r in rows if r["dataset"] == "caltech101" and r["row"] == "TS")
    assert ts["base_per_seed"] == "71.0 72.0" and "TRAINER.DPC.DHNO=false" in ts["settings"]


def test_paper_numbers_stand_beside_an_11_dataset_coop_ablation(tmp_path):
    for dataset in DATASET_NAMES:
        put_b2n(tmp_path, dataset, "CoOp", 1, 80.0, 70.0, cfg="coop_cfg")
        for _, settings in ABLATION_ROWS:
            put_row(tmp_path, dataset, settings, 1, 85.0, 69.0)
    (table,) = ablation_report(str(tmp_path), paper=PAPER)["tables"]
    cells = {cell["row"]: cell for cell in table["average"]}
    assert table["label"] == "Average (11 datasets)" and table["paper_note"] is None
    assert (cells["CoOp"]["paper_base"], cells["CoOp"]["paper_new"], cells["CoOp"]["paper_hm"]) == (81.98, 68.84, 74.84)
    assert (cells["DPC"]["paper_base"], cells["DPC"]["paper_hm"]) == (85.15, 76.13)  # "DPC (TS+DHNO+WE+DE)"
    assert cells["TS+DHNO"]["diff_new"] == pytest.approx(69.0 - 64.12)


def test_other_hosts_say_the_paper_has_no_numbers(tmp_path):
    put_b2n(tmp_path, "caltech101", "MaPLe", 1, 80.0, 70.0, cfg="maple_cfg")
    put_row(tmp_path, "caltech101", ROW_SETTINGS["DPC"], 1, 82.0, 70.0, method="DPC_MaPLe")
    (table,) = ablation_report(str(tmp_path), paper=PAPER)["tables"]
    assert table["paper_note"] == "No paper numbers for MaPLe: the paper's ablation is on CoOp only."


def test_a_new_weight_sweep_reads_its_one_training_for_every_value(tmp_path):
    """ω_n only changes evaluation: one training folder (no ω_n in its name), a test folder per value."""
    values = ("0.0", "0.01", "0.2")
    for seed in (1, 2):
        for i, value in enumerate(values):
            put_row(tmp_path, "caltech101", {WEIGHT_NEW: value}, seed, 80.0 + seed if i == 0 else None,
                    70.0 - i - seed, train_settings={})
    (table,) = sweep_report(str(tmp_path), WEIGHT_NEW, paper=PAPER)["tables"]
    assert [cell["row"] for cell in table["average"]] == list(values)
    assert [cell["base_per_seed"] for cell in table["average"]] == [[81.0, 82.0]] * 3  # the one training
    assert [cell["new_mean"] for cell in table["average"]] == [68.5, 67.5, 66.5]
    assert table["paper_metric"] == "new" and "compared only" in table["paper_note"]


def test_a_training_sweep_keeps_values_apart_and_orders_them_by_value(tmp_path):
    for value, base in (("1.0", 75.0), ("0.1", 72.0), ("0.2", 74.0)):
        put_row(tmp_path, "caltech101", {WEIGHT_BASE: value}, 1, base, 70.0)
    put_b2n(tmp_path, "caltech101", "DPC_CoOp", 1, 10.0, 10.0, cfg=DPC_CFG)  # the plain run is no sweep value
    (table,) = sweep_report(str(tmp_path), WEIGHT_BASE, paper=PAPER)["tables"]
    assert [(cell["row"], cell["base_mean"]) for cell in table["average"]] == [("0.1", 72.0), ("0.2", 74.0),
                                                                                ("1.0", 75.0)]


def test_paper_sweep_points_match_values_written_either_way():
    assert PAPER.sweep("base", "weight_base")[0.0] == 81.98 and PAPER.sweep("new", "weight_new")[0.2] == 65.88
    assert normal_value("1") == normal_value("1.0") and normal_value("True") == normal_value("true")


def test_unfinished_methods_and_rows_are_named(ablation_runs, capsys):
    # DPC over CoOp on the plain config: three folders, none finished (killed runs)
    for seed in (1, 2, 3):
        (ablation_runs / layout.run_dir("", layout.BASE2NEW, "train", "caltech101", 16, "DPC_CoOp", DPC_CFG,
                                        seed).lstrip("/")).mkdir(parents=True)
    assert tables_main([str(ablation_runs), "--host", "CoOp"]) == 0
    printed = capsys.readouterr().out
    assert "DPC_CoOp: 0 of 3 runs finished" in printed
    assert "### CoOp+DPC" not in printed and "### CoOp: base-to-new" in printed  # variant folders: their own table
    # an ablation row with one run killed, and a row with no run at all
    ts = layout.run_dir(str(ablation_runs), layout.BASE2NEW, "test", "caltech101", 16, "DPC_CoOp",
                        layout.variant_dir_name(DPC_CFG, ROW_SETTINGS["TS"]), 2)
    (ablation_runs / ts / "results.json").write_text("{cut short")
    report = ablation_report(str(ablation_runs), paper=PAPER)
    assert {"name": "DPC_CoOp (TS)", "finished": 7, "runs": 8} in report["unfinished"]
    assert tables_main([str(ablation_runs), "--ablation"]) == 0
    assert "DPC_CoOp (TS): 7 of 8 runs finished" in capsys.readouterr().out


def test_a_row_without_a_run_is_named_not_borrowed(tmp_path, capsys):
    put_b2n(tmp_path, "caltech101", "CoOp", 1, 80.0, 70.0, cfg="coop_cfg")
    put_row(tmp_path, "caltech101", ROW_SETTINGS["DPC"], 1, 82.0, 70.0)
    (table,) = ablation_report(str(tmp_path), paper=PAPER)["tables"]
    ts = table["average"][1]
    assert ts["row"] == "TS" and ts["base_mean"] is None  # never DPC's numbers under another row's name
    assert tables_main([str(tmp_path), "--ablation"]) == 0
    assert "DPC_CoOp (TS): no run found" in capsys.readouterr().out


def test_axis_note_says_where_a_zoomed_axis_starts():
    assert axis_note(0.0) == "" and axis_note(63.0) == "axis starts at 63 %"
    low, high = accuracy_limits([64.62, 77.81])
    assert (low, high) == (62.0, 80.0) and axis_note(low) == "axis starts at 62 %"
    assert accuracy_limits([0.5, 3.0])[0] == 0.0  # near zero the axis starts at zero: no note


@pytest.mark.skipif(not matplotlib_available(), reason="matplotlib is a test extra: pip install '.[test]'")
def test_figures_are_written(ablation_runs, tmp_path, capsys):
    for extra in (["--ablation"], ["--sweep", WEIGHT_BASE]):
        assert tables_main([str(ablation_runs), *extra, "--quiet", "--figure"]) == 0
    figures = sorted((ablation_runs / "figures").iterdir())
    assert [f.name for f in figures] == ["ablation.png", f"sweep_{WEIGHT_BASE}.png"]
    assert all(f.stat().st_size > 10_000 for f in figures)
    (table,) = sweep_report(str(ablation_runs), WEIGHT_BASE, paper=PAPER)["tables"]
    labels = [label for label, *_ in panel_values(table, "base")]  # each row names ω_b and its other keys
    assert len(labels) == 5 and labels[0].startswith("0.2 (TRAINER.DPC.DHNO=False")
    b2n = tmp_path / "b2n.png"
    assert tables_main([str(ablation_runs), "--quiet", "--figure", str(b2n)]) == 0 and b2n.stat().st_size > 10_000


def test_the_papers_ablation_and_sweep_numbers_cover_our_rows_and_agree():
    """The carried numbers: a row for the host and each ablation row, HM = HM(Base, New), a point per swept value,
    and the sweeps meeting the ablation where the issue's mapping says they do (points read off plots: ±0.03)."""
    from tools.paper_experiments import WEIGHT_SWEEPS
    from tools.tables.arithmetic import harmonic_mean

    rows = {label: PAPER.ablation(label) for label in ["CoOp", *ROW_SETTINGS]}
    for label, (base, new, hm) in rows.items():
        assert hm == pytest.approx(harmonic_mean(base, new), abs=0.01), label
    for key, values, metric in WEIGHT_SWEEPS:
        points = PAPER.sweep(metric, key.rsplit(".", 1)[-1].lower())
        assert sorted(points) == sorted(float(v) for v in values), key
    base_sweep, new_sweep = PAPER.sweep("base", "weight_base"), PAPER.sweep("new", "weight_new")
    assert base_sweep[1.0] == pytest.approx(rows["TS+DHNO"][0], abs=0.03)
    assert base_sweep[0.2] == pytest.approx(rows["DPC"][0], abs=0.03)
    assert new_sweep[0.2] == pytest.approx(rows["TS+DHNO+WE"][1], abs=0.03)
    assert new_sweep[0.0] == rows["DPC"][1] == rows["CoOp"][1]  # ω_n = 0: the host's own new accuracy


def test_the_pipeline_prints_the_ablation_or_a_table_per_swept_key():
    from tools.pipeline import variants
    from tools.pipeline.cli import variant_tables
    from tools.pipeline.plan import Spec

    def tables(names=(), sweeps=()):
        return variant_tables(Spec(host="CoOp", root="data", out="out", variants=variants.plan_variants(names, sweeps)))

    assert tables() == []  # plain DPC: the base-to-new table
    assert tables(["ablation"]) == [{"ablation": True}]
    assert tables(["weight-sweeps"]) == [{"sweep": WEIGHT_BASE}, {"sweep": WEIGHT_NEW}]
    assert tables(sweeps=["TRAINER.DPC.TOPK=4,8"]) == [{"sweep": "TRAINER.DPC.TOPK"}]


def test_a_dataset_the_paper_lacks_is_named_by_its_folder(tmp_path):
    put_b2n(tmp_path, "my_flowers", "CoOp", 1, 80.0, 70.0, cfg="coop_cfg", name="ImageFolder")
    put_row(tmp_path, "my_flowers", ROW_SETTINGS["DPC"], 1, 82.0, 70.0)
    (table,) = ablation_report(str(tmp_path), paper=PAPER)["tables"]
    assert [d["label"] for d in table["datasets"]] == ["my_flowers"]


def test_a_marked_run_of_a_row_is_listed_under_the_ablation(tmp_path, capsys):
    put_b2n(tmp_path, "caltech101", "CoOp", 1, 80.0, 70.0, cfg="coop_cfg")
    cfg = layout.variant_dir_name(DPC_CFG, ROW_SETTINGS["DPC"])
    put_row(tmp_path, "caltech101", ROW_SETTINGS["DPC"], 1, 82.0, 70.0)
    folder = layout.run_dir(str(tmp_path), layout.BASE2NEW, "test", "caltech101", 16, "DPC_CoOp", cfg, 1)
    write_results(folder, finished_record(70.0, "Caltech101", 1, "new", split_generated="by this checkout"))
    assert tables_main([str(tmp_path), "--ablation"]) == 0
    printed = capsys.readouterr().out
    assert "**Marked runs**" in printed and "split drawn here (by this checkout)" in printed

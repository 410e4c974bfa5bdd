"""``python -m tools.demo --ablation``: the paper's component ablation on the demo world.

CoOp, then DPC over it with each row of ``tools/paper_experiments.py`` (TS, TS+DHNO, TS+DHNO+WE, TS+WE+DE, DPC),
base-to-new on the demo world. The rows are variants of the demo's DPC run, planned by the pipeline (one training
per distinct training setting, the evaluation-only weights evaluated from it); CoOp's runs are the demo's own, so
after ``python -m tools.demo`` they are finished and reused. The table is read back from the runs' results.json
files by the tables tool (``tools/tables/variants.py``), the figure drawn by ``tools/tables/figure_variants.py``.
"""
import os

from tabulate import tabulate

from tools.paper_experiments import ABLATION_ROWS
from tools.tables.cells import mean_std_cell, number
from tools.tables.figure import matplotlib_available
from tools.tables.figure_variants import save_variants_figure
from tools.tables.unfinished import unfinished_note
from tools.tables.variants import ablation_report

FIGURE = "demo_ablation_figure.png"


def ablation_variants():
    """DPC's settings of each ablation row, for the pipeline's ``Spec.variants``."""
    return [dict(settings) for _, settings in ABLATION_ROWS]


def demo_ablation_report(out, seeds, dataset):
    return ablation_report(os.path.abspath(out), host="CoOp", seeds=seeds, datasets=[dataset])


def demo_ablation_table(out, seeds, dataset):
    """One line per row: Base, New (mean ± std over seeds, then each seed's) and HM, from the runs' results.json;
    then a line naming any row that has not finished."""
    report = demo_ablation_report(out, seeds, dataset)
    lines, missing = [], []
    for table in report["tables"]:
        for cell in table["datasets"][0]["rows"]:
            lines.append([cell["row"], mean_std_cell(cell["base_mean"], cell["base_std"], 2, cell["base_per_seed"]),
                          mean_std_cell(cell["new_mean"], cell["new_std"], 2, cell["new_per_seed"]),
                          number(cell["hm"], 2)])
            if not cell["seeds_base"] == cell["seeds_new"] == sorted(seeds):
                found = (_seeds(cell["seeds_base"]) if cell["seeds_base"] == cell["seeds_new"] else
                         f"{_seeds(cell['seeds_base'])} (base), {_seeds(cell['seeds_new'])} (new)")
                missing.append(f"{cell['row']}: seeds {found} of {_seeds(sorted(seeds))}")
    text = tabulate(lines, headers=["Row", "Base", "New", "HM"], tablefmt="github", disable_numparse=True)
    notes = [note for note in (unfinished_note(report["unfinished"]),
                               "Rows without every seed: " + "; ".join(missing) + "." if missing else "") if note]
    return "\n\n".join([text, *notes])


def _seeds(seeds):
    return " ".join(map(str, seeds)) or "none"


def save_demo_ablation_figure(out, seeds, dataset):
    """The figure's path, or None when matplotlib is missing or no row has finished."""
    path = os.path.join(out, FIGURE)
    if matplotlib_available() and save_variants_figure(demo_ablation_report(out, seeds, dataset), path):
        return path
    return None

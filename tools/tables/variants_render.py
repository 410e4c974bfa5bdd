"""Markdown and CSV of the ablation and sweep reports (``tools.tables.variants``)."""
import csv
import io

from tabulate import tabulate

from tools.tables.cells import MISSING, mean_std_cell, number, signed
from tools.tables.variants import ABLATION, SWEEP

VARIANT_MODES = (ABLATION, SWEEP)
CSV_COLUMNS = ["kind", "host", "shots", "key", "dataset", "row", "method", "settings", "seeds_base", "seeds_new",
               "base_mean", "base_std", "new_mean", "new_std", "hm", "paper_base", "paper_new", "paper_hm",
               "diff_base", "diff_new", "diff_hm", "base_per_seed", "new_per_seed"]


def _seeds(cell):
    base, new = cell["seeds_base"], cell["seeds_new"]
    text = ",".join(map(str, base)) or MISSING
    return text if base == new else f"{text} / {','.join(map(str, new)) or MISSING}"


def _lines(cells, digits, with_paper):
    lines = []
    for cell in cells:
        line = [cell["row"], _seeds(cell),
                mean_std_cell(cell["base_mean"], cell["base_std"], digits, cell["base_per_seed"]),
                mean_std_cell(cell["new_mean"], cell["new_std"], digits, cell["new_per_seed"]),
                number(cell["hm"], digits)]
        if with_paper:
            line += [number(cell.get(f"paper_{m}"), digits) for m in ("base", "new", "hm")]
            line += [signed(cell.get(f"diff_{m}"), digits) for m in ("base", "new", "hm")]
        lines.append(line)
    return lines


def _grid(cells, digits, first, with_paper=False):
    header = [first, "Seeds", "Base", "New", "HM"]
    if with_paper:
        header += ["Paper Base", "Paper New", "Paper HM", "Δ Base", "Δ New", "Δ HM"]
    return tabulate(_lines(cells, digits, with_paper), headers=header, tablefmt="github", disable_numparse=True)


def table_title(table):
    if table["kind"] == ABLATION:
        return f"Ablation of DPC's components over {table['host']}, base-to-new, {table['shots']} shots"
    return f"Sweep of {table['key']}, DPC over {table['host']}, base-to-new, {table['shots']} shots"


def _table_markdown(table, digits):
    first = "Row" if table["kind"] == ABLATION else table["key"].rsplit(".", 1)[-1]
    with_paper = any(cell.get("paper_base") is not None or cell.get("paper_new") is not None
                     or cell.get("paper_hm") is not None for cell in table["average"])
    several = len(table["datasets"]) > 1
    where = table["label"] if several else (table["datasets"][0]["label"] if table["datasets"] else "no dataset")
    parts = [f"### {table_title(table)}: {where}", _grid(table["average"], digits, first, with_paper)]
    if table["paper_note"]:
        parts.append(table["paper_note"])
    if several:
        for dataset in table["datasets"]:
            parts += [f"#### {dataset['label']}", _grid(dataset["rows"], digits, first)]
    return "\n\n".join(parts)


def variants_markdown(report, digits=2):
    if not report["tables"]:
        what = "ablation" if report["mode"] == ABLATION else f"sweep of {report['key']}"
        return f"No {what} run under {report['out']}"
    return "\n\n".join(_table_markdown(table, digits) for table in report["tables"])


def _csv_value(value):
    if isinstance(value, list):
        return " ".join(map(str, value))
    if isinstance(value, dict):
        return " ".join(f"{k}={v}" for k, v in sorted(value.items()))
    return "" if value is None else value


def variants_csv(report):
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for table in report["tables"]:
        shared = {"kind": table["kind"], "host": table["host"], "shots": table["shots"], "key": table["key"]}
        groups = [("average", table["average"])] + [(d["dataset"], d["rows"]) for d in table["datasets"]]
        for dataset, cells in groups:
            for cell in cells:
                row = {**shared, "dataset": dataset, **cell}
                writer.writerow([_csv_value(row.get(column)) for column in CSV_COLUMNS])
    return buffer.getvalue()

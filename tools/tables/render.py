"""Markdown (tabulate, GitHub style) and CSV renderings of a table report; JSON is the report itself."""
import csv
import io
import json

from tabulate import tabulate

from tools import output_folders as layout
from tools.tables.cells import MISSING, mean_std_cell
from tools.tables.cells import number as _num
from tools.tables.cells import signed as _signed
from tools.tables.unfinished import unfinished_note
from tools.tables.variants_render import VARIANT_MODES, variants_csv, variants_markdown

B2N_CSV_COLUMNS = [
    "method", "paper_method", "shots", "dataset", "dataset_name", "cfg", "seeds_base", "seeds_new",
    "base_mean", "base_std", "new_mean", "new_std", "hm", "paper_base", "paper_new", "paper_hm",
    "diff_base", "diff_new", "diff_hm", "base_per_seed", "new_per_seed",
]


def _seeds(row):
    base, new = row["seeds_base"], row["seeds_new"]
    text = ",".join(map(str, base)) or MISSING
    return text if base == new else f"{text} / {','.join(map(str, new)) or MISSING}"


def _b2n_markdown(table, digits):
    has_paper = any(row["paper_base"] is not None for row in table["rows"])
    header = ["Dataset", "Seeds", "Base", "New", "HM"]
    if has_paper:
        header += ["Paper Base", "Paper New", "Paper HM", "Δ Base", "Δ New", "Δ HM"]
    lines = []
    for row in table["rows"]:
        line = [row["label"], _seeds(row),
                mean_std_cell(row["base_mean"], row["base_std"], digits, row["base_per_seed"]),
                mean_std_cell(row["new_mean"], row["new_std"], digits, row["new_per_seed"]), _num(row["hm"], digits)]
        if has_paper:
            line += [_num(row[k], digits) for k in ("paper_base", "paper_new", "paper_hm")]
            line += [_signed(row[k], digits) for k in ("diff_base", "diff_new", "diff_hm")]
        lines.append(line)
    avg = table["average"]
    if avg is not None:
        line = [f"**{avg['label']}**", "", _num(avg["base_mean"], digits), _num(avg["new_mean"], digits),
                _num(avg["hm"], digits)]
        if has_paper:
            line += [_num(avg[k], digits) for k in ("paper_base", "paper_new", "paper_hm")]
            line += [_signed(avg[k], digits) for k in ("diff_base", "diff_new", "diff_hm")]
        lines.append(line)
    cfgs = ", ".join(sorted({row["cfg"] for row in table["rows"] if row["cfg"]}))
    title = f"### {table['paper_method']}: base-to-new, {table['shots']} shots (config: {cfgs})"
    note = f"\n\n{table['paper_note']}" if table.get("paper_note") else ""
    return title + "\n\n" + tabulate(lines, headers=header, tablefmt="github", disable_numparse=True) + note


def _accuracy_markdown(report, digits):
    methods = report["methods"]
    header = ["Dataset", "Shots", *(_method_label(m) for m in methods)]
    lines = []
    for row in report["rows"]:
        cells = [row["methods"].get(m) for m in methods]
        lines.append([row["dataset"], row["shots"],
                      *(mean_std_cell(c["mean"], c["std"], digits, c.get("per_seed", ())) if c else MISSING
                        for c in cells)])
    for average in report["averages"]:
        lines.append([f"**{average['label']}**", average["shots"],
                      *(_num(average["methods"].get(m), digits) for m in methods)])
    title = {layout.CROSS_DATASET: "Cross-dataset", layout.DOMAIN_GENERALIZATION: "Domain generalisation",
             layout.FEW_SHOT: "Few-shot"}[report["mode"]]
    return f"### {title} accuracy (%)\n\n" + tabulate(lines, headers=header, tablefmt="github",
                                                       disable_numparse=True)


def _method_label(method):
    host, dpc = layout.split_method_dir_name(method)
    return f"{host}+DPC" if dpc else host


def _with_note(text, report):
    note = unfinished_note(report.get("unfinished", []))
    return f"{text}\n\n{note}" if note else text


def _marked_markdown(report):
    """The runs of the table whose numbers are not regular runs' (built on an unfinished run, a split drawn here)."""
    marked = report.get("marked") or []
    if not marked:
        return ""
    lines = [f"- `{run['path']}`: " + "; ".join(run["marks"]) for run in marked]
    return "\n\n**Marked runs** (counted in the table above):\n\n" + "\n".join(lines)


def to_markdown(report, digits=2):
    if report["mode"] in VARIANT_MODES:
        return _with_note(variants_markdown(report, digits) + _marked_markdown(report), report)
    if report["mode"] == layout.BASE2NEW:
        if not report["tables"]:
            return _with_note(f"No finished base-to-new runs under {report['out']}", report)
        tables = "\n\n".join(_b2n_markdown(table, digits) for table in report["tables"])
        return _with_note(tables + _marked_markdown(report), report)
    if not report["rows"]:
        return _with_note(f"No finished {report['mode']} runs under {report['out']}", report)
    return _with_note(_accuracy_markdown(report, digits) + _marked_markdown(report), report)


def _csv_value(value):
    if isinstance(value, list):
        return " ".join(map(str, value))
    return "" if value is None else value


def to_csv(report):
    if report["mode"] in VARIANT_MODES:
        return variants_csv(report)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if report["mode"] == layout.BASE2NEW:
        writer.writerow(B2N_CSV_COLUMNS)
        for table in report["tables"]:
            shared = {k: table[k] for k in ("method", "paper_method", "shots")}
            for row in [*table["rows"], *([table["average"]] if table["average"] else [])]:
                row = {**shared, **row}
                writer.writerow([_csv_value(row.get(column)) for column in B2N_CSV_COLUMNS])
        return buffer.getvalue()
    writer.writerow(["dataset", "shots", "method", "mean", "std", "seeds", "per_seed"])
    for row in report["rows"]:
        for method, cell in row["methods"].items():
            writer.writerow([row["dataset"], row["shots"], method, cell["mean"], cell["std"],
                             _csv_value(cell["seeds"]), _csv_value(cell.get("per_seed"))])
    for average in report["averages"]:
        for method, mean in average["methods"].items():
            writer.writerow([average["label"], average["shots"], method, mean, "", "", ""])
    return buffer.getvalue()


def to_json(report):
    return json.dumps(report, indent=2)

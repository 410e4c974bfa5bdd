"""Result tables from an output root, beside the DPC paper's numbers; reads ``results.json`` files only.

    python -m tools.tables output                              # base-to-new, every method found
    python -m tools.tables output --host CoOp --csv t.csv --json t.json --markdown t.md [--figure t.png]
    python -m tools.tables output --mode cross-dataset         # also: dg, few-shot

Base-to-new: per dataset, Base and New are mean ± std over seeds (population std), HM is the harmonic mean
of the mean Base and the mean New, and the average row is the HM of the mean Base and mean New over the
datasets: the paper's rules (see ``tools/tables/arithmetic.py``). Δ columns are ours minus the paper's.
Runs with extra settings (``<cfg>@KEY=VALUE`` folders) are read by --ablation and --sweep KEY only: a row per
ablation row or swept value, the 11-dataset average beside the paper's numbers (CoOp), then each dataset.
Every method or row with a run folder that has not finished is named under its table ("DPC_CoOp: 0 of 3 runs
finished"). --figure without a path writes <out>/figures/<table>.png.
"""
import argparse
import os
import sys

from tools import output_folders as layout
from tools.tables.arithmetic import TableError
from tools.tables.figure import matplotlib_available, save_base2new_figure
from tools.tables.figure_variants import save_variants_figure
from tools.tables.paper import PAPER_FILE, PaperResults
from tools.tables.render import to_csv, to_json, to_markdown
from tools.tables.report import build_report
from tools.tables.variants import ABLATION, SWEEP, ablation_report, sweep_report
from trainers.run.checkpoints import write_text_atomically


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m tools.tables", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", help="output root of the runs (the pipeline's --out)")
    parser.add_argument("--mode", choices=layout.MODES, default=layout.BASE2NEW)
    variants = parser.add_mutually_exclusive_group()
    variants.add_argument("--ablation", action="store_true",
                          help="the component ablation: the host, then TS ... DPC (base-to-new runs)")
    variants.add_argument("--sweep", metavar="KEY", help="a row per value of KEY (e.g. TRAINER.DPC.WEIGHT_NEW)")
    parser.add_argument("--host", help="only this host and DPC over it (e.g. CoOp)")
    parser.add_argument("--methods", nargs="+", help="only these method folders (e.g. CoOp DPC_CoOp)")
    parser.add_argument("--cfg", nargs="+", dest="cfgs", help="only these config names")
    parser.add_argument("--datasets", nargs="+", help="only these datasets (config file stems)")
    parser.add_argument("--shots", nargs="+", type=int)
    parser.add_argument("--seeds", nargs="+", type=int)
    parser.add_argument("--paper", default=PAPER_FILE, help="the paper's numbers (json); 'none' to leave out")
    parser.add_argument("--markdown", help="write the markdown table here")
    parser.add_argument("--csv", help="write the CSV table here")
    parser.add_argument("--json", help="write the full report (per-seed values included) here")
    parser.add_argument("--figure", nargs="?", const="", metavar="PATH",
                        help="write a figure (base-to-new, ablation, sweep; needs matplotlib), to PATH or "
                             "<out>/figures/")
    parser.add_argument("--digits", type=int, default=2)
    parser.add_argument("--quiet", action="store_true", help="do not print the markdown table")
    return parser


def _write(path, text):
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    write_text_atomically(path, text if text.endswith("\n") else text + "\n")


def make_report(out, mode=layout.BASE2NEW, paper_path=PAPER_FILE, ablation=False, sweep=None, **filters):
    paper = None if paper_path in (None, "", "none") else PaperResults.load(paper_path)
    out = os.path.abspath(out)
    if ablation or sweep:
        variant_filters = {k: v for k, v in filters.items() if k != "methods"}
        if ablation:
            return ablation_report(out, paper=paper, **variant_filters)
        return sweep_report(out, sweep, paper=paper, **variant_filters)
    return build_report(out, mode, paper=paper, **filters)


def _is_empty(report):
    if report["mode"] in (ABLATION, SWEEP):
        return not report["tables"]
    return not any(t["rows"] for t in report["tables"]) if "tables" in report else not report["rows"]


def _figure_path(args, report):
    if args.figure:
        return args.figure
    if report["mode"] == SWEEP:
        name = f"sweep_{report['key']}"
    else:
        name = report["mode"] if report["mode"] != layout.BASE2NEW else "base2new"
    return os.path.join(args.out, "figures", f"{name}.png")


def _save_figure(args, report):
    """Draw the report's figure; a line on stderr says why when it is not drawn."""
    if report["mode"] not in (layout.BASE2NEW, ABLATION, SWEEP):
        print("Note: --figure is drawn for base-to-new, ablation and sweep reports only; skipped", file=sys.stderr)
        return
    if not matplotlib_available():
        print('Note: matplotlib is not installed; the figure is skipped (pip install ".[plot]")', file=sys.stderr)
        return
    path = _figure_path(args, report)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    drawn = (save_base2new_figure(report, path) if report["mode"] == layout.BASE2NEW
             else save_variants_figure(report, path))
    if drawn:
        print(f"Figure written to {os.path.abspath(path)}")


def _why_empty(out, mode):
    """No run of ``mode`` in the layout: say which layout the tables read, and how many records lie elsewhere."""
    found = sum("results.json" in files for _, _, files in os.walk(out))
    expected = os.path.join(layout.phase_root(out, mode, "train"), "<dataset>", "shots_<K>", "<Method>", "<cfg>",
                            "seed<S>")
    where = f"no {mode} run in the pipeline's layout ({expected}/results.json; see tools/output_folders.py)"
    if found:
        return (f"{out}: {where}, though {found} results.json file(s) lie elsewhere under it. The tables read "
                "that layout only: run the benchmark with python -m tools.pipeline, or use its folders for "
                "--output-dir when you run train.py by hand")
    return f"{out}: {where}, and no results.json at all"


def main(argv=None):
    args = build_parser().parse_args(argv)
    if not os.path.isdir(args.out):
        print(f"error: output root {args.out} does not exist", file=sys.stderr)
        return 2
    filters = {"host": args.host, "methods": args.methods, "cfgs": args.cfgs, "shots": args.shots,
               "seeds": args.seeds, "datasets": args.datasets}
    if (args.ablation or args.sweep) and args.mode != layout.BASE2NEW:
        print("error: --ablation and --sweep read base-to-new runs; leave out --mode", file=sys.stderr)
        return 2
    try:
        report = make_report(args.out, args.mode, args.paper, ablation=args.ablation, sweep=args.sweep, **filters)
    except TableError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if _is_empty(report):
        if report.get("unfinished") or report["mode"] in (ABLATION, SWEEP):
            print(f"error: {to_markdown(report, args.digits)}", file=sys.stderr)
        else:
            print(f"error: {_why_empty(args.out, args.mode)}", file=sys.stderr)
        return 1
    markdown = to_markdown(report, args.digits)
    # files first, so that a closed stdout (| head) cannot lose them
    for path, text in ((args.markdown, markdown), (args.csv, to_csv(report)), (args.json, to_json(report))):
        if path:
            _write(path, text)
    if not args.quiet:
        print(markdown)
    if args.figure is not None:
        _save_figure(args, report)
    return 0


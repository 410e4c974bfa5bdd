"""Building the table reports from an output root (results.json files only) for each benchmark.

A report is a plain dict (what ``--json`` writes); ``tools.tables.render`` turns it into markdown and CSV.
Runs with extra settings (``<cfg>@KEY=VALUE`` folders: sweep values, ablation rows) have tables of their own
(``tools.tables.variants``); these reports count them only when ``cfgs`` names their folders. Every report lists
its methods' unfinished run folders under ``unfinished``.
"""
from tools import output_folders as layout
from tools.tables.arithmetic import accuracy_rows, base2new_rows
from tools.tables.results import collect, collect_unfinished, marked_runs
from tools.tables.unfinished import unfinished_counts


def _methods(host, methods):
    if methods:
        return set(methods)
    if host:
        return {layout.method_dir_name(host), layout.method_dir_name(host, dpc=True)}
    return None


def _collect(out, mode, host, methods, cfgs, shots, seeds, datasets=None):
    """(finished runs, unfinished run folders) of ``mode``; variant folders only when ``cfgs`` names them."""
    filters = {"methods": _methods(host, methods), "cfgs": cfgs, "shots": shots, "seeds": seeds}
    found = collect(out, mode, **filters), collect_unfinished(out, mode, **filters)
    return tuple([r for r in runs if (cfgs or not r.settings) and (not datasets or r.dataset in datasets)]
                 for runs in found)


def _unfinished(results, unfinished):
    return unfinished_counts(results, unfinished, lambda run: run.method)


def base2new_report(out, host=None, methods=None, cfgs=None, shots=None, seeds=None, datasets=None, paper=None):
    results, unfinished = _collect(out, layout.BASE2NEW, host, methods, cfgs, shots, seeds, datasets)
    return {"mode": layout.BASE2NEW, "out": out, "tables": base2new_rows(results, paper),
            "unfinished": _unfinished(results, unfinished), "marked": marked_runs(results)}


def _transfer_targets(mode, datasets, tested):
    if datasets:
        return [d for d in datasets if d in tested]
    if mode == layout.DOMAIN_GENERALIZATION:
        return [d for d in layout.DG_TARGETS if d in tested]
    # Cross-dataset: every evaluated dataset that is not a DG target, in the paper's order first.
    order = list(layout.CROSS_DATASET_TARGETS)
    others = sorted(d for d in tested if d not in order and d not in layout.DG_TARGETS)
    return [d for d in order if d in tested] + others


def transfer_report(out, mode, host=None, methods=None, cfgs=None, shots=None, seeds=None, datasets=None):
    """Cross-dataset or DG: accuracy on the source (the training run's final test) and on each target."""
    results, unfinished = _collect(out, mode, host, methods, cfgs, shots, seeds)
    tested = {r.dataset for r in results if r.phase == "test"}
    targets = _transfer_targets(mode, datasets, tested)
    sources = sorted({r.dataset for r in results if r.phase == "train"})

    def row_key(r):
        if r.phase == "train":
            return (f"{r.dataset} (source)", r.shots)
        return (r.dataset, r.shots) if r.dataset in targets else None

    table, _ = accuracy_rows(results, row_key)
    all_shots = sorted({k for _, k in table})
    rows, averages = [], []
    for k in all_shots:
        rows += [(f"{s} (source)", k) for s in sources if (f"{s} (source)", k) in table]
        rows += [(t, k) for t in targets if (t, k) in table]
        _, average = accuracy_rows(results, row_key, average_over={(t, k) for t in targets if (t, k) in table})
        averages.append({"shots": k, "label": "Average (targets)", "methods": average})
    return {**_accuracy_report(mode, out, table, rows, averages, _unfinished(results, unfinished)),
            "marked": marked_runs(results)}


def few_shot_report(out, host=None, methods=None, cfgs=None, shots=None, seeds=None, datasets=None):
    results, unfinished = _collect(out, layout.FEW_SHOT, host, methods, cfgs, shots, seeds, datasets)
    table, _ = accuracy_rows(results, lambda r: (r.dataset, r.shots))
    order = list(layout.BASE2NEW_DATASETS)
    names = sorted({d for d, _ in table}, key=lambda d: (order.index(d) if d in order else len(order), d))
    rows, averages = [], []
    for k in sorted({k for _, k in table}):
        keys = [(d, k) for d in names if (d, k) in table]
        rows += keys
        _, average = accuracy_rows(results, lambda r: (r.dataset, r.shots), average_over=set(keys))
        averages.append({"shots": k, "label": "Average", "methods": average})
    return {**_accuracy_report(layout.FEW_SHOT, out, table, rows, averages, _unfinished(results, unfinished)),
            "marked": marked_runs(results)}


def _accuracy_report(mode, out, table, rows, averages, unfinished):
    methods = sorted({m for cells in table.values() for m in cells},
                     key=lambda m: layout.split_method_dir_name(m))
    return {
        "mode": mode, "out": out, "methods": methods,
        "rows": [{"dataset": d, "shots": k, "methods": table[(d, k)]} for d, k in rows],
        "averages": averages, "unfinished": unfinished,
    }


def build_report(out, mode=layout.BASE2NEW, paper=None, **filters):
    if mode == layout.BASE2NEW:
        return base2new_report(out, paper=paper, **filters)
    if mode == layout.FEW_SHOT:
        return few_shot_report(out, **filters)
    return transfer_report(out, mode, **filters)

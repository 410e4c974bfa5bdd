"""The arithmetic of the tables, following the DPC paper (and the CoOp family) exactly:

- per dataset, Base and New are the mean over seeds of each seed's accuracy, with the population standard
  deviation (``numpy.std``, ddof 0, as the anchors' ``parse_test_res.py``); each seed's accuracy is kept
  beside them (``base_per_seed``, ``per_seed``), and the tables print it next to the mean;
- per dataset, HM is the harmonic mean **of the mean Base and the mean New**, 2BN/(B+N). This is the rule the
  paper's numbers obey (e.g. CoOp ImageNet: HM(76.41, 68.85) = 72.43); the mean of per-seed HMs is kept in
  the JSON output as ``hm_seed_mean`` for reference, never used for the table;
- the average row is the mean over datasets of Base and of New, and the HM of those two means (not the
  mean of the per-dataset HMs);
- differences are ours minus the paper's, and the paper's average is compared only when our average covers
  exactly the paper's datasets.
"""
import math
from collections import defaultdict

from tools.tables.paper import paper_method_key


class TableError(ValueError):
    """Results that cannot be put in one table (e.g. two configs of one method on one dataset)."""


def harmonic_mean(base, new):
    if base is None or new is None:
        return None
    return 0.0 if base + new == 0 else 2.0 * base * new / (base + new)


def mean_std(values):
    """Mean and population standard deviation, or (None, None) for no values."""
    if not values:
        return None, None
    mean = sum(values) / len(values)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


def _diff(ours, paper):
    return None if ours is None or paper is None else ours - paper


def _by_seed(results, what):
    seeds = {}
    for r in results:
        if r.seed in seeds:
            raise TableError(f"Two {what} results for seed {r.seed}: {seeds[r.seed].path} and {r.path}")
        seeds[r.seed] = r
    return seeds


def _single_cfg(results, method, dataset):
    cfgs = sorted({r.cfg for r in results})
    if len(cfgs) > 1:
        raise TableError(f"{method} on {dataset} has runs of several configs ({', '.join(cfgs)}); "
                         "choose them with --cfg NAME (repeatable)")
    return cfgs[0] if cfgs else None


def base2new_rows(results, paper=None):
    """One table per (method, shots): a row per dataset, then the average row.

    ``results`` are ``RunResult``s of the base-to-new layout: phase "train" holds base accuracies (the final
    test of the training run), phase "test" new accuracies. Returns a list of table dicts.
    """
    groups = defaultdict(lambda: defaultdict(list))
    for r in results:
        groups[(r.host, r.dpc, r.shots)][r.dataset].append(r)
    tables = []
    for (host, dpc, shots) in sorted(groups, key=lambda k: (k[0], k[1], k[2])):
        method = f"DPC_{host}" if dpc else host
        key = paper_method_key(host, dpc)
        rows = [_dataset_row(method, key, dataset, found, paper)
                for dataset, found in groups[(host, dpc, shots)].items()]
        rows.sort(key=lambda row: (paper.order(row["dataset_name"]) if paper else 0, row["dataset"]))
        tables.append({"method": method, "paper_method": key, "host": host, "dpc": dpc, "shots": shots,
                       "rows": rows, "average": average_row(rows, key, paper),
                       "paper_note": _missing_paper_note(key, rows, paper)})
    return tables


def _missing_paper_note(key, rows, paper):
    """A line saying the paper has no numbers for ``key`` on the paper's datasets (MMRL+DPC), or None."""
    on_paper_datasets = paper is not None and any(row["dataset_name"] in paper.datasets for row in rows)
    if not on_paper_datasets or paper.has_method(key):
        return None
    return f"No paper numbers for {key}: the paper tables this project carries have none for it."


def _dataset_row(method, paper_key, dataset, found, paper):
    cfg = _single_cfg(found, method, dataset)
    base_runs = _by_seed([r for r in found if r.phase == "train"], f"{method} base {dataset}")
    new_runs = _by_seed([r for r in found if r.phase == "test"], f"{method} new {dataset}")
    base = [base_runs[s].accuracy for s in sorted(base_runs)]
    new = [new_runs[s].accuracy for s in sorted(new_runs)]
    base_mean, base_std = mean_std(base)
    new_mean, new_std = mean_std(new)
    hm = harmonic_mean(base_mean, new_mean)
    paired = sorted(set(base_runs) & set(new_runs))
    seed_hms = [harmonic_mean(base_runs[s].accuracy, new_runs[s].accuracy) for s in paired]
    name = found[0].dataset_name
    reference = paper.row(paper_key, name) if paper else None
    paper_base, paper_new, paper_hm = reference or (None, None, None)
    return {
        "dataset": dataset, "dataset_name": name, "label": paper.label(name) if reference else dataset,
        "cfg": cfg,
        "seeds_base": sorted(base_runs), "seeds_new": sorted(new_runs),
        "base_per_seed": base, "new_per_seed": new,
        "base_mean": base_mean, "base_std": base_std, "new_mean": new_mean, "new_std": new_std, "hm": hm,
        "hm_seed_mean": mean_std(seed_hms)[0],
        "paper_base": paper_base, "paper_new": paper_new, "paper_hm": paper_hm,
        "diff_base": _diff(base_mean, paper_base), "diff_new": _diff(new_mean, paper_new),
        "diff_hm": _diff(hm, paper_hm),
    }


def average_row(rows, paper_key=None, paper=None):
    """Mean Base and mean New over the datasets that have both, and the HM of those means."""
    complete = [row for row in rows if row["base_mean"] is not None and row["new_mean"] is not None]
    if not complete:
        return None
    base = sum(row["base_mean"] for row in complete) / len(complete)
    new = sum(row["new_mean"] for row in complete) / len(complete)
    hm = harmonic_mean(base, new)
    covered = {row["dataset_name"] for row in complete}
    # The paper's average is over its 11 datasets: compare only an average over the same ones.
    reference = None
    if paper is not None and paper_key and covered == set(paper.datasets) and len(complete) == len(paper.datasets):
        reference = paper.average(paper_key)
    paper_base, paper_new, paper_hm = reference or (None, None, None)
    plural = "s" if len(complete) > 1 else ""
    label = "Average" if reference or paper is None else f"Average ({len(complete)} dataset{plural})"
    return {
        "dataset": "average", "dataset_name": None, "label": label, "n_datasets": len(complete),
        "datasets": [row["dataset"] for row in complete],
        "base_mean": base, "new_mean": new, "hm": hm,
        "paper_base": paper_base, "paper_new": paper_new, "paper_hm": paper_hm,
        "diff_base": _diff(base, paper_base), "diff_new": _diff(new, paper_new), "diff_hm": _diff(hm, paper_hm),
    }


def accuracy_rows(results, row_key, average_over=None):
    """Accuracy tables (cross-dataset, DG, few-shot): ``{row: {method: (mean, std, seeds)}}`` and the average.

    ``row_key(result)`` names a result's row (None drops it); the average row is the mean over the rows in
    ``average_over`` (default: all rows) of each method's mean, for methods present in every one of them.
    """
    cells = defaultdict(lambda: defaultdict(list))
    for r in results:
        row = row_key(r)
        if row is not None:
            cells[row][r.method].append(r)
    table = {}
    for row, methods in cells.items():
        table[row] = {}
        for method, found in methods.items():
            runs = _by_seed(found, f"{method} {row}")
            per_seed = [runs[s].accuracy for s in sorted(runs)]
            mean, std = mean_std(per_seed)
            table[row][method] = {"mean": mean, "std": std, "seeds": sorted(runs), "per_seed": per_seed}
    rows = [row for row in table if average_over is None or row in average_over]
    average = {}
    for method in sorted({m for row in rows for m in table[row]}):
        if rows and all(method in table[row] for row in rows):
            average[method] = sum(table[row][method]["mean"] for row in rows) / len(rows)
    return table, average

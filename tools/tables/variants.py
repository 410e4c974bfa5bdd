"""Tables over runs with extra settings (``<cfg>@KEY=VALUE`` folders): the paper's component ablation and any sweep.

A *row* is one set of settings of one method (an ablation row, a sweep value), or the host alone (the ablation's
first row). Per row and dataset, Base and New are mean ± std over seeds with each seed's number, HM the harmonic
mean of the two means (the rules of ``tools/tables/arithmetic.py``); the average is over the datasets the row has
both numbers for, and its spread is that of each seed's average over the datasets (given when every dataset has
that seed). The paper's numbers (CoOp, 11-dataset averages) stand beside the average when it covers the paper's
11 datasets.

Which folders a row reads, per phase (train_base: Base, test_new: New): the folder that names exactly those of
the row's settings that the phase's folders name at all. A key that no folder of a phase names (an
evaluation-only key, as ω_n is for training) does not take part there, so the one training run that a ω_n sweep
evaluates N times gives every value its Base; a key that some folder of the phase names must match, so a row
never borrows another row's run.
"""
from collections import defaultdict

from tools import output_folders as layout
from tools.paper_experiments import ABLATION_ROWS, WEIGHT_SWEEPS
from tools.tables.arithmetic import TableError, harmonic_mean, mean_std
from tools.tables.results import collect, collect_unfinished, marked_runs
from tools.tables.unfinished import unfinished_counts

ABLATION = "ablation"
SWEEP = "sweep"
PHASE_METRIC = {"train": "base", "test": "new"}


def normal_value(value):
    """A setting's value as one text whatever a command line wrote: ``1`` = ``1.0``, ``true`` = ``True``."""
    text = str(value).strip()
    if text.lower() in ("true", "false"):
        return text.lower()
    try:
        return repr(float(text))
    except ValueError:
        return text


def _normal(settings):
    return {key: normal_value(value) for key, value in settings.items()}


class _Row:
    def __init__(self, label, method, settings, value=None):
        self.label, self.method, self.settings, self.value = label, method, _normal(settings), value

    def name(self):
        return f"{self.method} ({self.label})"


class _Folders:
    """The runs of one host and number of shots, and which of them each row reads."""

    def __init__(self, runs):
        self.runs = runs
        self.phase_keys = defaultdict(set)  # (method, phase) -> every key its folders name
        for run in runs:
            self.phase_keys[(run.method, run.phase)] |= set(run.settings)
        cfgs = defaultdict(set)
        for run in runs:
            cfgs[run.method].add(run.cfg_name)
        for method, names in cfgs.items():
            if len(names) > 1:
                raise TableError(f"{method} has runs of several configs ({', '.join(sorted(names))}); choose them "
                                 "with --cfg NAME (repeatable)")

    def reads(self, row, run):
        if run.method != row.method:
            return False
        keys = self.phase_keys[(run.method, run.phase)]
        return _normal(run.settings) == {key: value for key, value in row.settings.items() if key in keys}

    def of(self, row, runs=None):
        return [run for run in (self.runs if runs is None else runs) if self.reads(row, run)]


def _by_seed(runs, what):
    seeds = {}
    for run in runs:
        if run.seed in seeds:
            raise TableError(f"Two {what} results for seed {run.seed}: {seeds[run.seed].path} and {run.path}")
        seeds[run.seed] = run.accuracy
    return seeds


def _cell(row, base, new):
    """Base and New of one row: ``base`` and ``new`` are {seed: accuracy}."""
    base_mean, base_std = mean_std([base[s] for s in sorted(base)])
    new_mean, new_std = mean_std([new[s] for s in sorted(new)])
    return {"row": row.label, "method": row.method, "settings": row.settings, "value": row.value,
            "seeds_base": sorted(base), "seeds_new": sorted(new),
            "base_per_seed": [base[s] for s in sorted(base)], "new_per_seed": [new[s] for s in sorted(new)],
            "base_mean": base_mean, "base_std": base_std, "new_mean": new_mean, "new_std": new_std,
            "hm": harmonic_mean(base_mean, new_mean)}


def _average_cell(row, per_dataset):
    """The row over the datasets it has Base and New for: the mean of each dataset's mean, with the spread of each
    seed's average (seeds every one of those datasets has)."""
    complete = [(base, new) for base, new in per_dataset if base and new]
    if not complete:
        return _cell(row, {}, {}), []
    seeds = sorted(set.intersection(*(set(base) & set(new) for base, new in complete)))
    cell = _cell(row, {s: sum(b[s] for b, _ in complete) / len(complete) for s in seeds},
                 {s: sum(n[s] for _, n in complete) / len(complete) for s in seeds})
    for metric, index in (("base", 0), ("new", 1)):
        means = [mean_std(list(pair[index].values()))[0] for pair in complete]
        cell[f"{metric}_mean"] = sum(means) / len(means)
        if len(seeds) < min(len(pair[index]) for pair in complete):
            cell[f"{metric}_std"], cell[f"{metric}_per_seed"] = None, []  # seeds differ between datasets
    cell["hm"] = harmonic_mean(cell["base_mean"], cell["new_mean"])
    return cell, complete


def _with_paper(cell, paper_values):
    for metric in ("base", "new", "hm"):
        paper_value = paper_values.get(metric)
        ours = cell[f"{metric}_mean"] if metric != "hm" else cell["hm"]
        cell[f"paper_{metric}"] = paper_value
        cell[f"diff_{metric}"] = None if paper_value is None or ours is None else ours - paper_value
    return cell


def _table(kind, host, shots, rows, folders, paper_for, paper, key=None):
    finished = [run for run in folders.runs if hasattr(run, "accuracy")]
    datasets = sorted({run.dataset for run in finished},
                      key=lambda d: (paper.order(_dataset_name(finished, d)) if paper else 0, d))
    per_dataset = {d: [] for d in datasets}
    averages, covered_all = [], []
    for row in rows:
        runs = folders.of(row, finished)
        pairs = []
        for dataset in datasets:
            base = _by_seed([r for r in runs if r.dataset == dataset and r.phase == "train"], f"{row.name()} base")
            new = _by_seed([r for r in runs if r.dataset == dataset and r.phase == "test"], f"{row.name()} new")
            per_dataset[dataset].append(_cell(row, base, new))
            pairs.append((base, new))
        cell, complete = _average_cell(row, pairs)
        averages.append(cell)
        covered_all.append({d for d, pair in zip(datasets, pairs) if pair[0] and pair[1]})
    covered = set.union(*covered_all) if covered_all else set()
    names = {_dataset_name(finished, d) for d in covered}
    on_paper = paper is not None and host == "CoOp" and names == set(paper.datasets)
    for row, cell in zip(rows, averages):
        _with_paper(cell, paper_for(row) if on_paper else {})
    return {
        "kind": kind, "host": host, "shots": shots, "key": key,
        "method": layout.method_dir_name(host, dpc=True),
        "label": _average_label(len(covered), on_paper),
        "average": averages,
        "datasets": [{"dataset": d, "label": _dataset_label(paper, _dataset_name(finished, d), d),
                      "rows": per_dataset[d]} for d in datasets],
        "paper_note": _paper_note(kind, host, on_paper, paper, paper_for, rows, key),
    }


def _dataset_name(finished, dataset):
    return next(run.dataset_name for run in finished if run.dataset == dataset)


def _dataset_label(paper, name, folder):
    """The paper's label of a dataset it has (``Caltech101``), else the folder's name (``demo_world``, not the
    ``ImageFolder`` reader a dataset of one's own records)."""
    return paper.label(name) if paper is not None and name in paper.datasets else folder


def _average_label(n, on_paper):
    if on_paper:
        return "Average (11 datasets)"
    return f"Average ({n} dataset{'s' if n != 1 else ''})"


def _paper_note(kind, host, on_paper, paper, paper_for, rows, key):
    if paper is None or on_paper:
        return None
    what = "ablation" if kind == ABLATION else f"sweep of {key}"
    if host != "CoOp":
        return f"No paper numbers for {host}: the paper's {what} is on CoOp only."
    if not any(paper_for(row) for row in rows):
        return f"No paper numbers: the paper has no {what}."
    return (f"The paper's {what} (CoOp) is an average over its 11 datasets; it is compared only with an average "
            "over the same 11.")


def _runs(out, host, cfgs, shots, seeds, datasets):
    methods = {layout.method_dir_name(host), layout.method_dir_name(host, dpc=True)} if host else None
    filters = {"methods": methods, "shots": shots, "seeds": seeds}
    runs = collect(out, layout.BASE2NEW, **filters), collect_unfinished(out, layout.BASE2NEW, **filters)
    return tuple([r for r in found if (not cfgs or r.cfg_name in cfgs) and (not datasets or r.dataset in datasets)]
                 for found in runs)


def _groups(finished, unfinished):
    """(host, shots) -> every run of the host and DPC over it, finished or not."""
    groups = defaultdict(list)
    for run in [*finished, *unfinished]:
        groups[(run.host, run.shots)].append(run)
    return groups


def _unfinished(folders, rows):
    counts = []
    for row in rows:
        runs = folders.of(row)
        if not runs:
            counts.append({"name": row.name(), "finished": 0, "runs": 0})
        counts += unfinished_counts([r for r in runs if hasattr(r, "accuracy")],
                                    [r for r in runs if not hasattr(r, "accuracy")], lambda _: row.name())
    return counts


def ablation_rows(host):
    """The host alone, then the paper's rows as DPC over it."""
    return [_Row(host, host, {})] + [_Row(label, layout.method_dir_name(host, dpc=True), settings)
                                     for label, settings in ABLATION_ROWS]


def ablation_report(out, host=None, cfgs=None, shots=None, seeds=None, datasets=None, paper=None):
    """One table per host (with DPC runs named after an ablation row) and number of shots."""
    finished, unfinished = _runs(out, host, cfgs, shots, seeds, datasets)
    tables, counts, shown = [], [], []
    for (found_host, k), runs in sorted(_groups(finished, unfinished).items()):
        rows = ablation_rows(found_host)
        folders = _Folders(runs)
        if not any(folders.of(row) for row in rows[1:]):
            continue  # no ablation run of this host

        def paper_for(row):
            values = paper.ablation("CoOp" if row.method == found_host else row.label) if paper else None
            return dict(zip(("base", "new", "hm"), values)) if values else {}

        tables.append(_table(ABLATION, found_host, k, rows, folders, paper_for, paper))
        counts += _unfinished(folders, rows)
        shown += [run for row in rows for run in folders.of(row) if hasattr(run, "accuracy")]
    return {"mode": ABLATION, "out": out, "tables": tables, "unfinished": counts, "marked": marked_runs(shown)}


def _sweep_paper_metric(key):
    """(metric, the paper file's name of the key) of the paper's sweep of ``key``, or None."""
    for swept, _, metric in WEIGHT_SWEEPS:
        if swept == key:
            return metric, key.rsplit(".", 1)[-1].lower()
    return None


def sweep_rows(runs, key):
    """One row per set of settings naming ``key`` (the fullest ones: a test folder names the evaluation keys its
    training folder does not), in the order of ``key``'s value."""
    found = {}
    for run in runs:
        if key in run.settings:
            found.setdefault((run.method, tuple(sorted(_normal(run.settings).items()))), run.settings)
    fullest = [(method, items) for method, items in found
               if not any(m == method and set(items) < set(other) for m, other in found)]

    def order(entry):
        value = dict(entry[1])[key]
        try:
            return (entry[0], 0, float(value), entry[1])
        except ValueError:
            return (entry[0], 1, 0.0, entry[1])

    rows = []
    for method, items in sorted(fullest, key=order):
        settings = found[(method, items)]
        others = ", ".join(f"{k}={v}" for k, v in sorted(settings.items()) if k != key)
        label = f"{settings[key]} ({others})" if others else str(settings[key])
        rows.append(_Row(label, method, settings, value=settings[key]))
    return rows


def sweep_report(out, key, host=None, cfgs=None, shots=None, seeds=None, datasets=None, paper=None):
    """One table per host (with runs named after a value of ``key``) and number of shots, a row per value."""
    finished, unfinished = _runs(out, host, cfgs, shots, seeds, datasets)
    plotted = _sweep_paper_metric(key)
    tables, counts, shown = [], [], []
    for (found_host, k), runs in sorted(_groups(finished, unfinished).items()):
        rows = sweep_rows(runs, key)
        if not rows:
            continue
        folders = _Folders(runs)

        def paper_for(row):
            if paper is None or plotted is None:
                return {}
            metric, key_name = plotted
            value = paper.sweep(metric, key_name).get(float(row.value))
            return {} if value is None else {metric: value}

        table = _table(SWEEP, found_host, k, rows, folders, paper_for, paper, key=key)
        table["paper_metric"] = plotted[0] if plotted else None
        tables.append(table)
        counts += _unfinished(folders, rows)
        shown += [run for row in rows for run in folders.of(row) if hasattr(run, "accuracy")]
    return {"mode": SWEEP, "out": out, "key": key, "tables": tables, "unfinished": counts,
            "marked": marked_runs(shown)}

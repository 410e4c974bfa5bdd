"""Figures of the ablation and sweep reports (``tools.tables.variants``), drawn as the paper draws them, from the
average over the datasets.

Sweep: Base, New and HM against the swept value, the values evenly spaced as the paper spaces them; the mean over
seeds as a line, each seed's number as a dot and the spread as a band; the paper's points (CoOp) as black diamonds.
Ablation: a bar per row, the spread as an error bar, each seed as a dot, the paper's numbers as black diamonds.
A row of three panels per table (host and shots). Axes start near the values shown, and say so
(``tools/tables/axes.py``).
"""
from tools.tables.axes import accuracy_limits, mark_axis_start
from tools.tables.figure import METRICS, matplotlib_available
from tools.tables.variants import SWEEP
from tools.tables.variants_render import table_title


def _values(cell, metric):
    """(mean, spread, each seed's number, paper) of one row and metric; HM's seeds pair Base and New."""
    if metric == "hm":
        pairs = list(zip(cell["base_per_seed"], cell["new_per_seed"]))
        seeds = [2 * b * n / (b + n) if b + n else 0.0 for b, n in pairs] if len(pairs) > 1 else []
        spread = (sum((h - sum(seeds) / len(seeds)) ** 2 for h in seeds) / len(seeds)) ** 0.5 if seeds else 0.0
        return cell["hm"], spread, seeds, cell.get("paper_hm")
    per_seed = cell[f"{metric}_per_seed"] if len(cell[f"{metric}_per_seed"]) > 1 else []
    return cell[f"{metric}_mean"], cell[f"{metric}_std"] or 0.0, per_seed, cell.get(f"paper_{metric}")


def panel_values(table, metric):
    """[(row label, mean, spread, per-seed numbers, paper)] of one panel, rows without the metric left out."""
    return [(cell["row"], *_values(cell, metric)) for cell in table["average"] if _values(cell, metric)[0] is not None]


def table_limits(table):
    shown = [v for metric, _ in METRICS for _, mean, spread, seeds, paper in panel_values(table, metric)
             for v in (mean - spread, mean + spread, *seeds, paper) if v is not None]
    return accuracy_limits(shown) if shown else (0.0, 100.0)


def _draw_panel(ax, table, metric, colour):
    points = panel_values(table, metric)
    xs = list(range(len(points)))
    means = [mean for _, mean, _, _, _ in points]
    spreads = [spread for _, _, spread, _, _ in points]
    if table["kind"] == SWEEP:
        ax.plot(xs, means, marker="o", color=colour, label="ours (mean over seeds)")
        ax.fill_between(xs, [m - s for m, s in zip(means, spreads)], [m + s for m, s in zip(means, spreads)],
                        color=colour, alpha=0.2, linewidth=0, label="± std over seeds")
    else:
        ax.bar(xs, means, width=0.6, yerr=spreads, capsize=3, color=colour, alpha=0.85,
               label="ours (mean ± std over seeds)", error_kw={"elinewidth": 0.8})
    for x, (_, _, _, seeds, _) in zip(xs, points):
        ax.scatter([x] * len(seeds), seeds, s=8, color="dimgray", zorder=3,
                   label="each seed" if x == 0 and seeds else None)
    papers = [(x, paper) for x, (_, _, _, _, paper) in zip(xs, points) if paper is not None]
    if papers:
        ax.scatter(*zip(*papers), marker="D", s=18, color="black", zorder=4, label="paper (CoOp, 11 datasets)")
    ax.set_xticks(xs)
    rotate = table["kind"] != SWEEP and len(xs) > 3
    ax.set_xticklabels([label for label, *_ in points], rotation=30 if rotate else 0,
                       ha="right" if rotate else "center", fontsize=8)
    if table["kind"] == SWEEP:
        ax.set_xlabel(table["key"].rsplit(".", 1)[-1], fontsize=8)


def report_title(report):
    return "Ablation of DPC's components" if report["mode"] != SWEEP else f"Sweep of {report['key']}"


def save_variants_figure(report, path):
    """Write the figure of an ablation or sweep report to ``path``; False (nothing written) without matplotlib
    or tables."""
    tables = [table for table in report["tables"] if any(cell["hm"] is not None for cell in table["average"])]
    if not matplotlib_available() or not tables:
        return False
    import matplotlib

    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(tables), len(METRICS), figsize=(11.0, 3.9 * len(tables)), squeeze=False)
    colours = plt.get_cmap("tab10").colors
    for axes_row, table in zip(axes, tables):
        low, high = table_limits(table)
        for ax, (metric, metric_label), colour in zip(axes_row, METRICS, colours):
            _draw_panel(ax, table, metric, colour)
            ax.set_ylim(low, high)
            where = table["label"].lower() if len(table["datasets"]) > 1 else table["datasets"][0]["label"]
            host = f"{table['host']}, " if len(tables) > 1 else ""
            ax.set_title(f"{metric_label}, {host}{where}", fontsize=9)
            mark_axis_start(ax, low)
            ax.grid(axis="y", alpha=0.3)
        axes_row[0].set_ylabel("accuracy (%)")
        handles, names = [], []
        for ax in axes_row:
            for handle, name in zip(*ax.get_legend_handles_labels()):
                if name not in names:
                    handles.append(handle)
                    names.append(name)
        axes_row[-1].legend(handles, names, fontsize=7, loc="best")
    fig.suptitle(table_title(tables[0]) if len(tables) == 1 else report_title(report), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return True

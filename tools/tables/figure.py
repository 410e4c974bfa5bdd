"""The figure of a base-to-new report: Base, New and HM side by side for every method, per dataset and on average.

One panel per metric; in each, a group of bars per dataset (and the average, when there are several datasets),
one bar per method (zero-shot CLIP, each host, host+DPC), the spread over seeds as error bars and the paper's
number as a black marker on its bar. The y-axis spans the values shown rather than starting at 0, so that the
point or two DPC adds is visible; a break mark and a note say where it starts (``tools/tables/axes.py``).

matplotlib is an optional extra (``pip install ".[plot]"``): without it the figure is skipped with a message.
"""
import importlib.util

from tools.tables.arithmetic import harmonic_mean, mean_std
from tools.tables.axes import accuracy_limits, mark_axis_start

METRICS = (("base", "Base"), ("new", "New"), ("hm", "HM"))


def matplotlib_available():
    return importlib.util.find_spec("matplotlib") is not None


def _method_order(table):
    """Zero-shot first, then each host followed by host+DPC."""
    return (table["host"] != "ZeroshotCLIP", table["host"], table["dpc"])


def _hm_spread(row):
    """The spread over seeds of the per-seed HM (seeds with both a base and a new result)."""
    pairs = list(zip(row["base_per_seed"], row["new_per_seed"]))
    return mean_std([harmonic_mean(b, n) for b, n in pairs])[1] if len(pairs) > 1 else 0.0


def _bar(row, metric):
    """(value, spread, paper value) of one bar; the average row has no spread."""
    if metric == "hm":
        return row["hm"], (_hm_spread(row) if "base_per_seed" in row else 0.0), row.get("paper_hm")
    return row[f"{metric}_mean"], row.get(f"{metric}_std") or 0.0, row.get(f"paper_{metric}")


def figure_groups(report):
    """(group labels, methods, values[method][metric] = [(value, spread, paper), ...]) of a report."""
    tables = sorted((t for t in report["tables"] if t["rows"]), key=_method_order)
    labels = []
    for table in tables:
        labels += [row["label"] for row in table["rows"] if row["label"] not in labels]
    with_average = len(labels) > 1
    methods, values = [], {}
    for table in tables:
        by_label = {row["label"]: row for row in table["rows"]}
        if with_average and table["average"]:
            by_label["Average"] = table["average"]
        methods.append(table["paper_method"])
        values[table["paper_method"]] = {
            metric: [_bar(by_label[label], metric) if label in by_label else (None, 0.0, None)
                     for label in labels + (["Average"] if with_average else [])]
            for metric, _ in METRICS}
    return labels + (["Average"] if with_average else []), methods, values


def _limits(values):
    shown = [v for per_metric in values.values() for bars in per_metric.values()
             for value, spread, paper in bars for v in (value, paper) if v is not None]
    return accuracy_limits(shown)


def save_base2new_figure(report, path, title=""):
    """Write the figure to ``path``; returns False (and writes nothing) when matplotlib is missing or the report
    has no rows."""
    if not matplotlib_available():
        return False
    labels, methods, values = figure_groups(report)
    if not methods:
        return False
    import matplotlib

    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt

    width = 0.8 / len(methods)
    fig, axes = plt.subplots(1, len(METRICS), figsize=(max(9.0, 1.2 * len(labels) * len(METRICS)), 3.8),
                             squeeze=False)
    low, high = _limits(values)
    colours = plt.get_cmap("tab10").colors
    for ax, (metric, metric_label) in zip(axes[0], METRICS):
        for m, method in enumerate(methods):
            offsets = [i - 0.4 + width * (m + 0.5) for i in range(len(labels))]
            bars = values[method][metric]
            heights = [value if value is not None else 0.0 for value, _, _ in bars]
            drawn = ax.bar(offsets, heights, width=width * 0.92, yerr=[spread for _, spread, _ in bars], capsize=2,
                           color=colours[m % len(colours)], label=method, error_kw={"elinewidth": 0.8})
            if len(labels) <= 4:  # few groups: the numbers fit above the bars
                ax.bar_label(drawn, labels=[f"{v:.1f}" if v is not None else "" for v, _, _ in bars], fontsize=7,
                             padding=2)
            papers = [(x, paper) for x, (_, _, paper) in zip(offsets, bars) if paper is not None]
            if papers:
                ax.scatter(*zip(*papers), marker="D", s=14, color="black", zorder=3,
                           label="paper" if m == 0 and metric == "base" else None)
        ax.set_xticks(range(len(labels)))
        ax.set_xticklabels(labels, rotation=30 if len(labels) > 3 else 0, ha="right" if len(labels) > 3 else "center",
                           fontsize=8)
        ax.set_ylim(low, high)
        ax.set_title(metric_label)
        mark_axis_start(ax, low)
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].set_ylabel("accuracy (%)")
    handles, names = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=len(names), fontsize=8, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return True

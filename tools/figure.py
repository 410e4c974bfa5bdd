"""An optional bar chart of a base-to-new report: HM per dataset for every method, ours beside the paper's.

matplotlib is not a dependency of the project: without it the figure is skipped with a message.
"""
import importlib.util


def matplotlib_available():
    return importlib.util.find_spec("matplotlib") is not None


def save_base2new_figure(report, path):
    """Write the figure to ``path``; returns False (and writes nothing) when matplotlib is missing."""
    if not matplotlib_available():
        return False
    import matplotlib

    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt

    tables = [t for t in report["tables"] if t["rows"]]
    fig, axes = plt.subplots(len(tables) or 1, 1, figsize=(10, 3.2 * max(1, len(tables))), squeeze=False)
    for ax, table in zip(axes[:, 0], tables):
        rows = list(table["rows"]) + ([table["average"]] if table["average"] else [])
        labels = [row["label"] for row in rows]
        x = range(len(rows))
        ours = [row["hm"] or 0.0 for row in rows]
        ax.bar([i - 0.2 for i in x], ours, width=0.4, label="ours")
        if any(row["paper_hm"] is not None for row in rows):
            ax.bar([i + 0.2 for i in x], [row["paper_hm"] or 0.0 for row in rows], width=0.4, label="paper")
        ax.set_xticks(list(x))
        ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=8)
        ax.set_ylabel("HM (%)")
        ax.set_title(f"{table['paper_method']}, {table['shots']} shots")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True

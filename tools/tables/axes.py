"""Axes that do not start at zero say so: a break mark at the foot of the y-axis and a note "axis starts at 63 %".

Accuracy bars that start at 0 would hide the point or two DPC adds, so the figures zoom in; the mark and the note
keep a reader from taking the bars' heights for the accuracies' ratios.
"""
import math


def accuracy_limits(values, margin_share=0.15, min_margin=1.0):
    """(low, high) of an accuracy axis: the values shown with a margin, whole percents, within [0, 100]."""
    low, high = min(values), max(values)
    margin = max(min_margin, margin_share * (high - low))
    return max(0.0, math.floor(low - margin)), min(100.0, math.ceil(high + margin))


def axis_note(low, unit="%"):
    """The note of an axis starting at ``low``: "" when it starts at zero."""
    if low <= 0:
        return ""
    return f"axis starts at {low:g} {unit}"


def mark_axis_start(ax, low, unit="%"):
    """Draw the break mark and the note (under the title: set the title first) on a matplotlib axis whose y-axis
    starts at ``low``; nothing at zero. Returns the note."""
    note = axis_note(low, unit)
    if not note:
        return ""
    # two short slanted strokes across the foot of the y-axis, in axes coordinates
    size = 0.015
    stroke = {"transform": ax.transAxes, "color": "black", "clip_on": False, "linewidth": 0.9}
    for offset in (0.0, 0.022):
        ax.plot((-size, size), (offset - size, offset + size), **stroke)
    # under the panel's title, where no bar or label can cover it
    title = ax.get_title()
    ax.set_title(f"{title}\n({note})" if title else f"({note})", fontsize=9)
    return note

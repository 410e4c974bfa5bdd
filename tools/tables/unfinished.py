"""What a table leaves out because it has not finished: per method (or ablation row, or sweep value), how many of
its run folders hold a valid ``results.json``, so that a missing line is never silent."""
from collections import defaultdict


def unfinished_counts(finished, unfinished, name):
    """``[{"name", "finished", "runs"}]`` for every group with a run folder that has not finished; ``name(run)``
    names a run's group (None leaves the run out)."""
    counts = defaultdict(lambda: [0, 0])
    for runs, done in ((finished, 1), (unfinished, 0)):
        for run in runs:
            group = name(run)
            if group is not None:
                counts[group][0] += done
                counts[group][1] += 1
    return [{"name": group, "finished": done, "runs": total}
            for group, (done, total) in sorted(counts.items()) if done < total]


def unfinished_line(count):
    """``DPC_CoOp: 0 of 3 runs finished``; ``... : no run found`` for an expected row without a folder."""
    if count["runs"] == 0:
        return f"{count['name']}: no run found"
    runs = "run" if count["runs"] == 1 else "runs"
    return f"{count['name']}: {count['finished']} of {count['runs']} {runs} finished"


def unfinished_note(counts):
    """The note under a table ("" when every run folder has finished)."""
    if not counts:
        return ""
    return "Not finished (left out or partly in): " + "; ".join(unfinished_line(c) for c in counts) + "."

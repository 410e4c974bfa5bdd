"""Which of the runs ready at the same time starts first: a rank per run, lowest first."""


def plan_order(runs):
    """The plan's own order: each dataset's stages one after another, as the serial pipeline has always run."""
    return {run.key: index for index, run in enumerate(runs)}


def longest_chain_first(runs):
    """Runs at the head of the longest chain of planned runs waiting on them first, then the plan's order.

    A host training heads a chain of three (its DPC training, then DPC's test; its own test beside them), a
    DPC training one of two, a test ends its chain: every host training starts before any DPC training, and
    every training before any test, so the work that unblocks the most goes first and the slots stay busy.
    Among equals the plan's order decides, and the benchmarks list ImageNet, by far the longest dataset,
    first. Run lengths are not estimated otherwise.
    """
    planned = {run.key for run in runs}
    dependants = {run.key: [] for run in runs}
    for run in runs:
        for need in run.needs:
            if need.key in planned:
                dependants[need.key].append(run.key)
    chain = {}
    for run in reversed(runs):  # the plan lists every run after the runs it needs
        chain[run.key] = 1 + max((chain[key] for key in dependants[run.key]), default=0)
    return {run.key: (-chain[run.key], index) for index, run in enumerate(runs)}

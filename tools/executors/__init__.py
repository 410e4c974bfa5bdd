"""Where the pipeline's runs execute, behind one seam (``base.Executor``).

The plan and the rules stay in ``tools/runner.py`` whatever the executor: when a run may start (the runs it
needs have finished), whether it is finished, blocked or stale, and what its outcome is. An executor only
starts runs and reports when each one ended: ``processes.SerialExecutor`` (the default: a train.py process at
a time) and ``inline.InProcessExecutor`` (the demo: ``train.main`` in the pipeline's own process).
"""

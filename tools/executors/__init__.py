"""Where the pipeline's runs execute: one after another (``serial``), or several at a time on this machine's
GPUs or CPU (``local``); the demo runs them inside its own process (``inline``).

The plan and the rules stay in ``tools/runner.py`` whatever the executor: when a run may start (the runs it
needs have finished), whether it is finished, blocked or stale, and what its outcome is. An executor only
starts runs and reports when each one ended (``base.Executor``).
"""

"""Where the pipeline's runs execute: one after another (``serial``), several at a time on this machine's GPUs
or CPU (``local``), or as Slurm job arrays (``slurm``).

The plan and the rules stay in ``tools/pipeline/runner.py`` whatever the executor: when a run may start (the runs it
needs have finished), whether it is finished, blocked or stale, and what its outcome is. An executor only
starts runs and reports when each one ended (``base.Executor``). A Slurm job unpickles
``slurm_job.TrainJob`` on its node, so that module and what it imports (``processes``) stay light.
"""

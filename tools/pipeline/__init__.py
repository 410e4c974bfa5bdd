"""The run pipeline, ``python -m tools.pipeline``: the plan of ``train.py`` runs a benchmark needs (``plan``,
``presets``, ``configs``), its execution (``runner``, ``run_state``, ``executors/``) and its progress display."""

"""Entry points besides ``train.py``: the run pipeline (``python -m tools.pipeline``) and the result tables
(``python -m tools.tables``). Nothing in ``trainers/`` or ``datasets/`` imports from here."""

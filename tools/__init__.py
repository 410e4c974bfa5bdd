"""Entry points besides ``train.py``: the run pipeline (``python -m tools.pipeline``) and the result tables
(``python -m tools.tables``). Nothing in ``trainers/`` or ``datasets/`` imports from here."""
import warnings

# The openai-clip package imports pkg_resources, which warns on every start-up of a tool that loads it.
warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)

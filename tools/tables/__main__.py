"""``python -m tools.tables``: bad input is reported in a line or two (``trainers/run/errors.py``)."""
import sys

from tools.tables.cli import main
from trainers.run.errors import run_reporting_bad_input

if __name__ == "__main__":
    sys.exit(run_reporting_bad_input(main, program="python -m tools.tables"))

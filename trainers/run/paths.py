"""Where the checkout is: configs, ``train.py`` and the git commit a record names are found from here."""
import os

REPO_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

"""``python -m tools.tables``."""
from tools.tables.cli import main

if __name__ == "__main__":
    main()

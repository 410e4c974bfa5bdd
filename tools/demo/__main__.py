"""``python -m tools.demo``."""
from tools.demo.cli import main

if __name__ == "__main__":
    main()

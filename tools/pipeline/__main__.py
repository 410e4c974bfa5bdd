"""``python -m tools.pipeline``."""
from tools.pipeline.cli import main

if __name__ == "__main__":
    main()

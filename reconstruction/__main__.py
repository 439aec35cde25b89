"""Entry point for ``python -m reconstruction``."""

import sys

from reconstruction.cli import main

if __name__ == "__main__":
    sys.exit(main())

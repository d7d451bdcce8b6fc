"""``python -m gaussmix``: the command-line interface (see :mod:`gaussmix._cli`)."""
import sys

from ._cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())

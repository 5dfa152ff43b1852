"""``python -m hedgegrid_ops``: see ``hedgegrid_ops.cli``."""

import sys

from hedgegrid_ops.cli import main

if __name__ == "__main__":
    sys.exit(main())

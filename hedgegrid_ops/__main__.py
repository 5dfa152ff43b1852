"""``python -m hedgegrid_ops``: see ``hedgegrid_ops.cli``.

The process ends through ``quick_exit.exit_now``: everything of ours is closed when
``main`` returns, and the interpreter's own teardown would only spend time (up to
seconds under load) finalizing Nautilus's objects.
"""

from hedgegrid_ops.cli import main
from hedgegrid_ops.quick_exit import exit_now

if __name__ == "__main__":
    exit_now(main())

"""``python -m tests.unlisted_instrument run ...``: the program without its instrument pre-check.

``run`` refuses, before start-up, an instrument the simulated venue does not list
(one line, exit 2). The strategy keeps its own defence for venues whose listing is
only known after connecting: it halts in ``on_start`` when the instrument is not in
the cache. Tests of that halted state reach it through this entry point, which
turns off only the CLI's pre-check and runs the real program otherwise.
"""

from __future__ import annotations

from hedgegrid_ops import cli
from hedgegrid_ops.quick_exit import exit_now

if __name__ == "__main__":
    cli.unprovided_instrument = lambda _instrument_id: None
    exit_now(cli.main())

"""End the program without the interpreter's teardown, once everything of ours is closed.

Why: when ``run`` returns, the node is stopped and disposed, the summary is on
stdout, the log sinks are drained and closed and the state directory is committed
and closed. A normal interpreter exit then still spends 0.25 s on an idle 2-core
machine, and seconds under load, in the garbage collector: it finalizes Nautilus's
whole object graph (cache, engines, instruments, Cython and Rust objects) and every
module, and none of that writes anything anyone reads. It was most of the time a
SIGTERM took to end the process once the summary was out.

Why it is safe — what a normal exit would still do, and where that is done instead:
- ``atexit`` handlers (stdlib ``logging.shutdown``, Nautilus's Rust runtime
  shutdown, pyarrow's finalizer, anything a library registered): run here, in order;
- Python's ``sys.stdout``/``sys.stderr`` buffers: flushed here (our own lines never
  sit in them: every sink writes with ``os.write``);
- Nautilus's own log file, written by a Rust thread through a buffer that its
  ``LogGuard`` flushes when finalized: flushed and fsynced here
  (``sync_logger_to_disk``), before the process ends;
- non-daemon threads, which a normal exit waits for: if any is still alive we do
  not cut it off but fall back to the normal exit;
- our log files, the audit trail (fsynced per batch) and the state database were
  closed by ``run`` before it returned; sockets, file descriptors and the state
  directory's lock are released by the kernel with the process, as on any exit.

What is skipped: ``__del__`` of objects still alive and module teardown. No object
of ours writes from ``__del__``; a buffered Python file left open by a library
would lose its buffer, and none is open at that point in a ``run``.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
from typing import NoReturn


def _other_live_threads() -> bool:
    """Is a non-daemon thread other than this one still running (a normal exit waits)?"""
    me = threading.current_thread()
    return any(t is not me and not t.daemon and t.is_alive() for t in threading.enumerate())


def _flush_stdio() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


def _sync_nautilus_log() -> None:
    """Flush and fsync Nautilus's log file (only if this process started Nautilus's logger)."""
    component = sys.modules.get("nautilus_trader.common.component")
    if component is None:
        return
    with contextlib.suppress(Exception):
        if component.is_logging_initialized():
            component.sync_logger_to_disk()


def exit_now(code: int) -> NoReturn:
    """Run the exit handlers, flush what is buffered, then end the process with ``code``."""
    if _other_live_threads():
        sys.exit(code)  # someone's thread still works: let the normal exit wait for it
    _flush_stdio()
    atexit._run_exitfuncs()
    _sync_nautilus_log()
    _flush_stdio()
    os._exit(code)

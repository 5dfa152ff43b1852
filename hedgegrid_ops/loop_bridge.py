"""Hand-over of callbacks from foreign threads onto the event loop.

Nautilus timer callbacks fire on Rust worker threads, but strategy state may only
be touched on the loop thread. ``LoopBridge`` schedules each callback with
``call_soon_threadsafe``, guarded by a lock so a hand-over cannot race with the
bridge being closed at shutdown (a late timer tick is then dropped, not run on a
closing loop). It knows nothing of HTTP or of the strategy: the node builds one,
gives it to the strategy, and closes it after the node has stopped.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any


class LoopBridge:
    """Marshals callbacks from foreign threads (Nautilus timers) onto the event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._lock = threading.Lock()
        self._open = True

    def wrap(self, handler: Callable[[Any], None]) -> Callable[[Any], None]:
        """Return a callback safe to give to a Nautilus timer: it runs ``handler`` on the loop."""

        def marshal(event: Any) -> None:
            self.call(handler, event)

        return marshal

    def call(self, handler: Callable[[Any], None], event: Any) -> None:
        """Schedule ``handler(event)`` on the loop (safe from any thread, the loop's own too)."""
        with self._lock:
            if not self._open or self._loop.is_closed():
                return
            self._loop.call_soon_threadsafe(handler, event)

    def soon(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` later in this loop iteration (only from the loop's own thread)."""
        self._loop.call_soon(callback)

    def close(self) -> None:
        with self._lock:
            self._open = False

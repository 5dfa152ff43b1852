"""The API app's background tasks, tied to the app's own lifecycle (``cleanup_ctx``).

The command consumer, the loop-lag probe and (with a webhook configured) the
notifier's worker start when the app starts and stop when it is cleaned up, in one
place, so no flag can leave one running or stopped by mistake and any runner of the
app (the service, an in-process test) gets all of them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from aiohttp import web

from hedgegrid_ops.ops.context import CONTEXT
from hedgegrid_ops.ops.metrics import LAG_WINDOW, OpsMetrics

LAG_PROBE_EVERY = 0.005  # seconds between probes
TIMER_ROUNDING = 0.001  # libuv/asyncio timers fire up to 1 ms late by design


class LoopLagProbe:
    """Probes how long a callback that becomes ready waits for the loop.

    Every few milliseconds the probe measures two waits and keeps the larger: how late
    its timer fired (less the timer's 1 ms rounding, which is not lag), which catches
    one long block, and how long a ``call_soon`` callback then waited, which is the wait
    an arriving request or command sees while the loop works through a busy queue.
    Plain callbacks, no task or future: the probe runs 200 times a second and must
    cost the strategy next to nothing."""

    def __init__(self, loop: asyncio.AbstractEventLoop, metrics: OpsMetrics) -> None:
        self._loop = loop
        self._metrics = metrics
        self._clock = time.perf_counter
        self._timer: asyncio.TimerHandle | None = None
        self._window_end = loop.time() + LAG_WINDOW
        self._worst = 0.0
        self._armed_at = 0.0
        self._timer_lag = 0.0
        self._queued_at = 0.0
        self._stopped = False

    def start(self) -> None:
        self._arm()

    def stop(self) -> None:
        self._stopped = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm(self) -> None:
        self._armed_at = self._clock()
        self._timer = self._loop.call_later(LAG_PROBE_EVERY, self._fired)

    def _fired(self) -> None:
        now = self._clock()
        self._timer_lag = now - self._armed_at - LAG_PROBE_EVERY - TIMER_ROUNDING
        self._queued_at = now
        self._timer = None
        self._loop.call_soon(self._ran)

    def _ran(self) -> None:
        lag = max(self._clock() - self._queued_at, self._timer_lag, 0.0)
        self._metrics.observe_loop_lag(lag)
        self._worst = max(self._worst, lag)
        if self._loop.time() >= self._window_end:
            self._metrics.set_loop_lag(self._worst)
            self._window_end, self._worst = self._loop.time() + LAG_WINDOW, 0.0
        if not self._stopped:
            self._arm()


async def background_tasks(app: web.Application) -> AsyncIterator[None]:
    """``cleanup_ctx`` of the API app: run the command consumer, the lag probe and the
    notifier."""
    ctx = app[CONTEXT]
    ctx.bus.start()
    probe = LoopLagProbe(asyncio.get_running_loop(), ctx.metrics)
    probe.start()
    if ctx.notifier is not None:
        await ctx.notifier.start()
    try:
        yield
    finally:
        probe.stop()
        await ctx.bus.close()
        if ctx.notifier is not None:  # last: a halt on stopping may still go out
            await ctx.notifier.close()

"""The API app's background tasks, tied to the app's own lifecycle (``cleanup_ctx``).

The command consumer and the loop-lag probe start when the app starts and stop when
it is cleaned up, in one place, so no flag can leave one running or stopped by
mistake and any runner of the app (the service, an in-process test) gets both.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from hedgegrid_ops.ops.context import CONTEXT
from hedgegrid_ops.ops.metrics import LAG_WINDOW, OpsMetrics

LAG_PROBE_EVERY = 0.005  # seconds between probes
TIMER_ROUNDING = 0.001  # libuv/asyncio timers fire up to 1 ms late by design


def _resolve_with_time(fut: asyncio.Future[float], clock: Callable[[], float]) -> None:
    """Set ``fut`` to the time this callback ran (unless it was cancelled meanwhile)."""
    if not fut.done():
        fut.set_result(clock())


async def track_loop_lag(metrics: OpsMetrics) -> None:
    """Probe how long a callback that becomes ready waits for the loop.

    Every few milliseconds the probe measures two waits and keeps the larger: how late
    its sleep ended (less the timer's 1 ms rounding, which is not lag), which catches
    one long block, and how long a ``call_soon`` callback then waited, which is the wait
    an arriving request or command sees while the loop works through a busy queue."""
    loop = asyncio.get_running_loop()
    clock = time.perf_counter
    window_end, worst = loop.time() + LAG_WINDOW, 0.0
    while True:
        slept = clock()
        await asyncio.sleep(LAG_PROBE_EVERY)
        ran: asyncio.Future[float] = loop.create_future()
        queued = clock()
        loop.call_soon(_resolve_with_time, ran, clock)
        lag = max(await ran - queued, queued - slept - LAG_PROBE_EVERY - TIMER_ROUNDING)
        lag = max(lag, 0.0)
        metrics.observe_loop_lag(lag)
        worst = max(worst, lag)
        if loop.time() >= window_end:
            metrics.set_loop_lag(worst)
            window_end, worst = loop.time() + LAG_WINDOW, 0.0


async def background_tasks(app: web.Application) -> AsyncIterator[None]:
    """``cleanup_ctx`` of the API app: run the command consumer and the lag probe."""
    ctx = app[CONTEXT]
    ctx.bus.start()
    lag = asyncio.get_running_loop().create_task(
        track_loop_lag(ctx.metrics), name="hedgegrid-loop-lag"
    )
    try:
        yield
    finally:
        lag.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await lag
        await ctx.bus.close()

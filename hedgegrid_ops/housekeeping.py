"""Bounded memory over long runs: drop what Nautilus's cache keeps of the closed past.

Nautilus's cache keeps every order, every closed position (and its snapshots) and
every account event for the life of the process: about 7 KB per order submitted,
gigabytes a day for a grid at paper speed. ``LiveExecEngineConfig`` has
``purge_closed_orders_interval_mins`` and friends, but they run on a Nautilus timer,
and live-clock timer callbacks fire on Rust worker threads: the purge would mutate
the cache while the loop reads it. So the same cache calls run here instead, as an
asyncio task on the node's loop, between two events like everything else.

What is purged, every ``interval`` seconds: orders and positions closed for longer
than ``interval``, and account events older than ``interval``. Open orders and
positions are never touched (Nautilus refuses to purge them).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from hedgegrid_ops.logs import get_logger

DEFAULT_PURGE_INTERVAL = 60.0


@dataclass(frozen=True)
class PurgeReport:
    """Cache sizes around one purge (orders and positions are closed ones)."""

    orders_before: int
    orders_after: int
    positions_before: int
    positions_after: int
    orders_in_cache: int  # all orders left, open ones included


def purge_once(cache: Any, now_ns: int, age_secs: int) -> PurgeReport:
    """Purge closed orders/positions older than ``age_secs`` and older account events."""
    orders_before = len(cache.orders_closed())
    positions_before = len(cache.positions_closed())
    cache.purge_closed_orders(now_ns, age_secs)
    cache.purge_closed_positions(now_ns, age_secs)
    cache.purge_account_events(now_ns, age_secs)
    return PurgeReport(
        orders_before=orders_before,
        orders_after=len(cache.orders_closed()),
        positions_before=positions_before,
        positions_after=len(cache.positions_closed()),
        orders_in_cache=len(cache.orders()),
    )


async def purge_forever(cache: Any, clock: Any, interval: float) -> None:
    """Run ``purge_once`` every ``interval`` seconds on the calling loop until cancelled."""
    log = get_logger("housekeeping")
    age = max(1, int(interval))
    while True:
        await asyncio.sleep(interval)
        report = purge_once(cache, clock.timestamp_ns(), age)
        log.info(
            "cache_purged",
            closed_orders_purged=report.orders_before - report.orders_after,
            closed_positions_purged=report.positions_before - report.positions_after,
            orders_in_cache=report.orders_in_cache,
        )

"""Bounded memory over long runs: drop what Nautilus's cache keeps of the closed past.

Nautilus's cache keeps every order, every closed position (and its snapshots) and
every account event for the life of the process: about 7 KB per order submitted,
gigabytes a day for a grid at paper speed. ``LiveExecEngineConfig`` has
``purge_closed_orders_interval_mins`` and friends, but they run on a Nautilus timer,
and live-clock timer callbacks fire on Rust worker threads: the purge would mutate
the cache while the loop reads it. So the same cache calls run here instead, as an
asyncio task on the node's loop, between two events like everything else.

What is purged: orders and positions closed for longer than ``interval`` seconds, and
account events older than that. Open orders and positions are never touched (Nautilus
refuses to purge them). The purge runs every second, not once per ``interval``: it holds
the loop about 20 µs per order it drops (measured), so a minute's worth at once (4,500
orders at ``--speed 60``) stalled every request for ~100 ms, while a second's worth
costs a millisecond or two. One ``cache_purged`` line per ``interval`` sums them up.
Right after each orders' purge, the ids Nautilus 1.231's purge leaves in its position
index are dropped too (``position_index.py``); open legs' fills and interned ids are
what still grows (docs/operations.md, "Memory over long runs").

The fill history on disk is bounded here too: ``archive_fills_forever`` asks the state
directory's writer thread once a minute to fold fills older than the retention window
into per-day totals (``history/store.py``).
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hedgegrid_ops.history.store import FillHistory
from hedgegrid_ops.logs import get_logger
from hedgegrid_ops.position_index import PurgedIdSweeper

DEFAULT_PURGE_INTERVAL = 60.0
PURGE_STEP_SECONDS = 1.0
# Start-up (imports, Nautilus's kernel, instruments, the first grid) is over by then.
FREEZE_AFTER_SECONDS = 5.0
ARCHIVE_EVERY_SECONDS = 60.0


@dataclass
class PurgeTotals:
    """What the purges since the last ``cache_purged`` line did."""

    purges: int = 0
    orders: int = 0
    positions: int = 0
    index_ids: int = 0  # purged order ids left in Nautilus's position index, dropped
    longest_seconds: float = 0.0  # the longest single cache call: the loop's stall


async def purge_once(
    cache: Any, now_ns: int, age_secs: int, totals: PurgeTotals, sweeper: PurgedIdSweeper
) -> None:
    """Purge closed orders/positions older than ``age_secs`` and older account events.

    Each of the three cache calls is its own slice of the loop (requests and market
    events waiting in between are served), and only cheap counts are read: listing the
    closed orders to count them cost as much as purging a second's worth. The orders'
    slice also drops the purged ids Nautilus leaves in its position index
    (``position_index.py``).
    """
    # Only closed orders and positions are ever purged, so the total counts just before
    # and after each call (nothing else runs in between) say how many went.
    before = cache.orders_total_count()
    _timed(totals, cache.purge_closed_orders, now_ns, age_secs)
    totals.orders += before - cache.orders_total_count()
    # In the same slice: a fill handled in between would meet the purged ids.
    totals.index_ids += _timed(totals, sweeper.sweep, cache)
    await asyncio.sleep(0)
    before = cache.positions_total_count()
    _timed(totals, cache.purge_closed_positions, now_ns, age_secs)
    totals.positions += before - cache.positions_total_count()
    await asyncio.sleep(0)
    _timed(totals, cache.purge_account_events, now_ns, age_secs)
    totals.purges += 1


def _timed[T](totals: PurgeTotals, call: Callable[..., T], *args: Any) -> T:
    """Run one cache call; the longest one is the loop's longest stall."""
    started = time.perf_counter()
    result = call(*args)
    totals.longest_seconds = max(totals.longest_seconds, time.perf_counter() - started)
    return result


async def purge_forever(cache: Any, clock: Any, interval: float) -> None:
    """Purge what is older than ``interval`` every second (or every ``interval`` if
    shorter) on the calling loop, logging a summary once per ``interval``, until cancelled."""
    log = get_logger("housekeeping")
    age = max(1, int(interval))
    step = min(interval, PURGE_STEP_SECONDS)
    totals = PurgeTotals()
    sweeper = PurgedIdSweeper()
    next_line = time.monotonic() + interval
    while True:
        await asyncio.sleep(step)
        await purge_once(cache, clock.timestamp_ns(), age, totals, sweeper)
        if time.monotonic() < next_line:
            continue
        log.info(
            "cache_purged",
            closed_orders_purged=totals.orders,
            closed_positions_purged=totals.positions,
            position_index_ids_dropped=totals.index_ids,
            orders_in_cache=cache.orders_total_count(),
            purges=totals.purges,
            longest_purge_ms=round(totals.longest_seconds * 1e3, 3),
        )
        totals = PurgeTotals()
        next_line = time.monotonic() + interval


async def archive_fills_forever(
    history: FillHistory, keep_days: int, every: float = ARCHIVE_EVERY_SECONDS
) -> None:
    """Queue the fill history's retention now and every ``every`` seconds, until cancelled.

    Only a queue append on the loop: the writer thread folds and deletes. Once a minute
    is often enough to keep the table to the window plus a minute, even at ``--speed 60``
    (a simulated day passes in 24 wall minutes), and costs one indexed ``MAX(ts)`` when
    there is nothing to fold."""
    while True:
        history.archive_old_fills(keep_days)
        await asyncio.sleep(every)


def freeze_start_up_objects() -> int:
    """Move every object alive now out of the garbage collector's reach (``gc.freeze``).

    What start-up built (modules, Nautilus's kernel, configs) lives as long as the
    process, yet every full collection walked all of it: on this machine, at
    ``--speed 60``, one full collection in the first minutes stalled the event loop for
    77-166 ms (measured with ``gc.callbacks``), every request and market event waiting.
    Frozen, those objects are skipped; what the run allocates later is still collected.
    Returns how many objects were frozen (logged)."""
    gc.freeze()
    return gc.get_freeze_count()

"""Work around NautilusTrader 1.231 leaving purged order ids in its position index.

Every order is submitted with its hedge leg's position id, so Nautilus's cache indexes
it under that position from the start (``add_position_id``). An order only learns its
position id when it fills, and ``Cache.purge_order`` cleans the position index only
through the order's own ``position_id``: a grid order cancelled without a fill stays
in the index after the purge, for ever (fixed upstream in the Rust cache,
nautechsystems/nautilus_trader#4569; 1.231's Cython cache still has it).

In paper mode that costs more than memory. The Sandbox's matching engine lists
``orders_for_position`` on every fill and logs one "missing in cache" warning per
stale id: measured at ``--speed 60``, 5,900 stale ids on one leg after 9 minutes made
about 200,000 warnings a second (50 MB of log every 1.5 s), and the work per fill keeps
growing with the run. At the default speed a day's stale ids would take more CPU than
the machine has.

The index is private to the Cython cache. The cache object does reference it, so it is
found once through ``gc.get_referents`` (the only dict of ``PositionId`` → set of
``ClientOrderId``) and, after each purge, ids whose order is no longer in the cache
are dropped from it: exactly what the upstream fix does inside ``purge_order``. It runs
on the loop, between two events, like the purge itself.
"""

from __future__ import annotations

import gc
from typing import Any

from nautilus_trader.model.identifiers import ClientOrderId, PositionId


def _is_position_orders_index(candidate: object) -> bool:
    if not isinstance(candidate, dict) or not candidate:
        return False
    for key, value in candidate.items():
        if not isinstance(key, PositionId) or not isinstance(value, set):
            return False
        if not all(isinstance(member, ClientOrderId) for member in value):
            return False
    return True


def find_position_orders_index(cache: Any) -> dict[Any, set[Any]] | None:
    """The cache's position → order ids index, or None while it is empty (or not found).

    The dict object lives as long as the cache (``clear_index`` empties it in place),
    so one successful look is enough."""
    found = [r for r in gc.get_referents(cache) if _is_position_orders_index(r)]
    return found[0] if len(found) == 1 else None


def drop_purged_ids(cache: Any, index: dict[Any, set[Any]]) -> int:
    """Remove ids whose order is gone from the cache; return how many went.

    Open and not-yet-purged orders stay: ``order_exists`` is true for them."""
    dropped = 0
    for ids in index.values():
        stale = [order_id for order_id in ids if not cache.order_exists(order_id)]
        ids.difference_update(stale)
        dropped += len(stale)
    return dropped


class PurgedIdSweeper:
    """Drops purged order ids from the cache's position index, found on first use."""

    def __init__(self) -> None:
        self._index: dict[Any, set[Any]] | None = None

    def sweep(self, cache: Any) -> int:
        if self._index is None:
            self._index = find_position_orders_index(cache)
            if self._index is None:
                return 0  # nothing indexed yet
        return drop_purged_ids(cache, self._index)

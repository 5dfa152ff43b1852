"""Coalesced snapshot publishing: at most one snapshot per event-loop iteration.

The strategy asks for a snapshot after every bar and every order, fill and position
event. A bar that moves the grid brings a burst of a dozen such events, which Nautilus's
engines drain in one loop iteration; building a snapshot (positions, ladders, every open
order) after each of them held the loop for milliseconds while HTTP requests queued.
So a request only marks the snapshot stale and, on the live loop, schedules one build
with ``call_soon``: it runs after the burst, before any request handler that was waiting
resumes, and reflects everything the burst changed. Without a loop (a BacktestEngine,
where everything runs on one thread in simulated time) the snapshot is built at once,
so backtest checks still see every intermediate state.
"""

from __future__ import annotations

from collections.abc import Callable

from hedgegrid_ops.snapshot import SnapshotStore, StrategySnapshot

Schedule = Callable[[Callable[[], None]], object]


class SnapshotPublisher:
    """Builds and publishes the strategy's snapshot, once per loop iteration at most."""

    def __init__(
        self,
        store: SnapshotStore | None,
        build: Callable[[], StrategySnapshot],
        schedule: Schedule | None,
    ) -> None:
        self._store = store
        self._build = build
        self._schedule = schedule
        self._pending = False

    def request(self) -> None:
        """Something the snapshot shows has changed (call on the loop thread only)."""
        if self._store is None:
            return
        if self._schedule is None:
            self._publish()
        elif not self._pending:
            self._pending = True
            self._schedule(self._publish)

    def flush(self) -> None:
        """Publish now if a build is pending (on stop, so the last state is not lost)."""
        if self._pending:
            self._publish()

    def _publish(self) -> None:
        self._pending = False
        if self._store is not None:
            self._store.publish(self._build())

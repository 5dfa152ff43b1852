"""Is the venue reachable and is its market data fresh? The answer /health gives in live mode.

Fed on the event loop by message-bus handlers (connectivity events from the live
clients, any market data for the traded instrument); read by the /health handler
on the same loop. Pure bookkeeping: no Nautilus import, no I/O, the clock is
passed in, so the rules are unit-testable.

Rules, most severe first:
- a channel (``rest``, ``user_stream``, ``market_stream``) reported down -> degraded,
  with the channel's own sentence, until it reports up again;
- a failure reported in the last ``failure_hold`` seconds -> degraded, even if the
  channel answered again since: with several requests in flight one can time out
  while the next succeeds, and an operator must still see that the venue is failing;
- no market data for ``max_data_gap`` seconds (or none yet, once that long has
  passed since start-up) -> degraded.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from hedgegrid_ops.venue_events import ConnectivityEvent


@dataclass
class ChannelState:
    up: bool
    detail: str
    since: float
    outages: int = 0


@dataclass
class VenueMonitor:
    """Tracks channel state and market-data freshness; ``problem()`` is the /health input."""

    max_data_gap: float
    clock: Callable[[], float] = time.monotonic
    failure_hold: float = 5.0
    started: float = field(default=0.0)
    last_market_data: float | None = None
    channels: dict[str, ChannelState] = field(default_factory=dict)
    last_failure: dict[str, tuple[float, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.started = self.clock()

    def on_market_data(self, _data: object = None) -> None:
        self.last_market_data = self.clock()

    def on_connectivity(self, event: ConnectivityEvent) -> None:
        now = self.clock()
        if not event.up:
            self.last_failure[event.channel] = (now, event.detail)
        state = self.channels.get(event.channel)
        if state is None:
            self.channels[event.channel] = ChannelState(
                event.up, event.detail, now, outages=0 if event.up else 1
            )
            return
        if state.up and not event.up:
            state.outages += 1
        if state.up != event.up:
            state.since = now
        state.up = event.up
        state.detail = event.detail

    def outages(self, channel: str) -> int:
        state = self.channels.get(channel)
        return state.outages if state else 0

    def problem(self) -> str | None:
        """One sentence saying why the venue is not usable now, or None when it is."""
        now = self.clock()
        for name in ("rest", "user_stream", "market_stream"):
            state = self.channels.get(name)
            if state is not None and not state.up:
                down_for = now - state.since
                return f"venue {name.replace('_', ' ')} down for {down_for:.0f}s: {state.detail}"
        for name in ("rest", "user_stream", "market_stream"):
            failed = self.last_failure.get(name)
            if failed is not None and now - failed[0] < self.failure_hold:
                ago = now - failed[0]
                return f"venue {name.replace('_', ' ')} failing ({ago:.0f}s ago): {failed[1]}"
        if self.last_market_data is None:
            if now - self.started > self.max_data_gap:
                return f"no market data from the venue since start-up ({now - self.started:.0f}s)"
            return None
        gap = now - self.last_market_data
        if gap > self.max_data_gap:
            return (
                f"no market data from the venue for {gap:.0f}s "
                f"(more than the {self.max_data_gap:g}s allowed)"
            )
        return None

"""Per-client token buckets: how many of something a client may do per minute.

Used for failed authentication (stops key guessing) and for POST commands (one
client cannot flood the command queue). Pure bookkeeping with an injectable clock,
so it is tested without sleeping. The table of clients is bounded: past
``max_clients`` the least recently seen client is forgotten (a forgotten client
starts with a full bucket, which errs towards letting an operator in).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable


class TokenBuckets:
    """``per_minute`` tokens per client, refilled continuously, burst up to ``per_minute``."""

    def __init__(
        self,
        per_minute: int,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if per_minute < 1:
            raise ValueError(f"per_minute must be >= 1, got {per_minute}")
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0  # tokens per second
        self.max_clients = max_clients
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, at

    def _level(self, client: str) -> float:
        now = self._clock()
        tokens, at = self._buckets.get(client, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - at) * self.rate)
        self._buckets[client] = (tokens, now)
        self._buckets.move_to_end(client)
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        return tokens

    def retry_after(self, client: str) -> float:
        """Seconds until ``client`` has a token again; 0.0 when it has one now."""
        tokens = self._level(client)
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate

    def take(self, client: str) -> float:
        """Spend a token: 0.0 when granted, else the seconds to wait (nothing is spent)."""
        tokens = self._level(client)
        if tokens < 1.0:
            return (1.0 - tokens) / self.rate
        self._buckets[client] = (tokens - 1.0, self._clock())
        return 0.0

    def __len__(self) -> int:
        return len(self._buckets)


def retry_after_header(seconds: float) -> str:
    """``Retry-After`` takes whole seconds; round up so a client that obeys it succeeds."""
    return str(max(1, math.ceil(seconds)))

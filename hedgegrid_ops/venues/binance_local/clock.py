"""Simulated time for the market and the user stream's listenKey bookkeeping."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

NS_PER_SECOND = 1_000_000_000
LISTEN_KEY_TTL_MS = 60 * 60 * 1000


class SimClock:
    """Simulated nanoseconds advancing ``speed`` simulated minutes per wall second.

    Pausing freezes simulated time (a stale feed); resuming continues from the
    frozen instant rather than jumping ahead. ``rebase`` lets the pump drop time it
    could not keep up with instead of bursting it out later.
    """

    def __init__(
        self, start_ns: int, speed: float, wall_ns: Callable[[], int] = time.monotonic_ns
    ) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be > 0, was {speed}")
        self.rate = speed * 60.0  # simulated seconds per wall second
        self._wall = wall_ns
        self._anchor_wall = wall_ns()
        self._anchor_sim = start_ns
        self._frozen: int | None = None

    @property
    def paused(self) -> bool:
        return self._frozen is not None

    def now(self) -> int:
        if self._frozen is not None:
            return self._frozen
        return self._anchor_sim + int((self._wall() - self._anchor_wall) * self.rate)

    def wall_delay(self, sim_ns: int) -> float:
        """Wall seconds until simulated time reaches ``sim_ns`` (0 if already there)."""
        return max(0.0, (sim_ns - self.now()) / self.rate / NS_PER_SECOND)

    def pause(self) -> None:
        if self._frozen is None:
            self._frozen = self.now()

    def resume(self) -> None:
        if self._frozen is not None:
            self.rebase(self._frozen)
            self._frozen = None

    def rebase(self, sim_ns: int) -> None:
        self._anchor_sim = sim_ns
        self._anchor_wall = self._wall()


class ListenKeys:
    """The one user-stream key of the account (Binance: one active key per API key).

    ``issue`` returns the active key (extending it) or a new one; a key expires
    60 minutes after its last keepalive, or when the fault switch expires it.
    """

    def __init__(self) -> None:
        self.active: str | None = None
        self.valid_until_ms = 0

    def issue(self, now_ms: int) -> str:
        if self.active is None or now_ms >= self.valid_until_ms:
            self.active = secrets.token_urlsafe(48)
        self.valid_until_ms = now_ms + LISTEN_KEY_TTL_MS
        return self.active

    def keepalive(self, now_ms: int) -> bool:
        if self.active is None or now_ms >= self.valid_until_ms:
            return False
        self.valid_until_ms = now_ms + LISTEN_KEY_TTL_MS
        return True

    def is_valid(self, key: str, now_ms: int) -> bool:
        return key == self.active and now_ms < self.valid_until_ms

    def revoke(self) -> None:
        self.active = None
        self.valid_until_ms = 0

    def due_expiry(self, now_ms: int) -> str | None:
        """The active key if it just ran out (then forgotten), else None."""
        if self.active is not None and now_ms >= self.valid_until_ms:
            key = self.active
            self.revoke()
            return key
        return None

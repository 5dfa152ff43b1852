"""Fault switches for tests and rehearsals, set through the admin routes.

Pure state: the HTTP layer consults it on every request (``take_failure``,
``delay_for``) and the market pump checks ``market_paused``. One-shot switches
count themselves down so "fail the next 3 order requests" means exactly three.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hedgegrid_ops.venues.binance_local.errors import BinanceError


@dataclass(slots=True)
class FailRule:
    """Fail the next ``remaining`` requests to ``path`` (any method unless given)."""

    path: str
    remaining: int
    status: int
    code: int
    msg: str
    method: str | None = None

    def matches(self, method: str, path: str) -> bool:
        return self.remaining > 0 and path == self.path and self.method in (None, method)


@dataclass(slots=True)
class DelayRule:
    """Delay requests to ``path`` (every path when None) by ``seconds``, before handling them.

    ``method`` narrows it to one HTTP method: ``DELETE /fapi/v1/order`` delays cancels
    (the order keeps working in the book meanwhile) without slowing new orders.
    """

    seconds: float
    path: str | None = None
    remaining: int | None = None  # None = until cleared
    method: str | None = None


@dataclass(slots=True)
class Faults:
    """Every active fault switch."""

    failures: list[FailRule] = field(default_factory=list)
    delays: list[DelayRule] = field(default_factory=list)
    market_paused: bool = False

    def take_failure(self, method: str, path: str) -> BinanceError | None:
        """The error to answer this request with, consuming one count of the rule."""
        for rule in self.failures:
            if rule.matches(method, path):
                rule.remaining -= 1
                err = BinanceError(rule.code, rule.msg, rule.status)
                self.failures = [r for r in self.failures if r.remaining > 0]
                return err
        return None

    def delay_for(self, path: str, method: str | None = None) -> float:
        """Seconds to hold this request before answering (0 when no delay applies)."""
        total = 0.0
        for rule in self.delays:
            if rule.method is not None and rule.method != method:
                continue
            if rule.path in (None, path) and (rule.remaining is None or rule.remaining > 0):
                total = max(total, rule.seconds)
                if rule.remaining is not None:
                    rule.remaining -= 1
        self.delays = [r for r in self.delays if r.remaining is None or r.remaining > 0]
        return total

    def clear(self) -> None:
        self.failures.clear()
        self.delays.clear()
        self.market_paused = False

    def describe(self) -> dict[str, object]:
        return {
            "failures": [
                {
                    "path": r.path,
                    "method": r.method,
                    "remaining": r.remaining,
                    "status": r.status,
                    "code": r.code,
                }
                for r in self.failures
            ],
            "delays": [
                {"path": r.path, "method": r.method, "seconds": r.seconds, "remaining": r.remaining}
                for r in self.delays
            ],
            "market_paused": self.market_paused,
        }

"""Value types shared by the grid maths.

They live apart from the functions so that the strategy, the snapshot code and
the tests can all name a rung or a side without importing any computation, and
so that nothing here can ever drag in Nautilus.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum


class PositionSide(StrEnum):
    """Leg of a hedge-mode position; the two legs are managed independently."""

    LONG = "LONG"
    SHORT = "SHORT"


class OrderRole(StrEnum):
    """Why an order exists; encoded in its client order id so it survives restarts."""

    GRID = "grid"
    TAKE_PROFIT = "take_profit"
    STOP_LOSS = "stop_loss"
    FLATTEN = "flatten"


class Regime(StrEnum):
    """Market state that decides which side of the grid is counter-trend."""

    SIDEWAYS = "sideways"
    UP = "up"
    DOWN = "down"


@dataclass(frozen=True, slots=True)
class InstrumentRules:
    """Exchange filters an order must pass, or the venue rejects it.

    ``max_qty`` is optional because not every venue publishes it for limit orders.
    """

    tick_size: Decimal
    step_size: Decimal
    min_qty: Decimal
    min_notional: Decimal
    max_qty: Decimal | None = None

    def __post_init__(self) -> None:
        # A zero or negative tick/step would make every quantisation divide by
        # zero or flip signs later, far from the configuration mistake.
        if self.tick_size <= 0:
            raise ValueError(f"tick_size must be > 0, got {self.tick_size}")
        if self.step_size <= 0:
            raise ValueError(f"step_size must be > 0, got {self.step_size}")
        if self.min_qty < 0:
            raise ValueError(f"min_qty must be >= 0, got {self.min_qty}")
        if self.min_notional < 0:
            raise ValueError(f"min_notional must be >= 0, got {self.min_notional}")
        if self.max_qty is not None and self.max_qty <= 0:
            raise ValueError(f"max_qty must be > 0 when set, got {self.max_qty}")


@dataclass(frozen=True, slots=True)
class GridParams:
    """Shape of the ladder after throttle, regime and funding adjustments.

    Kept as one immutable value so each adjustment is a pure ``GridParams ->
    GridParams`` function and the order in which they are applied is explicit.
    """

    step_bps: float
    levels_long: int
    levels_short: int
    base_qty: Decimal
    qty_scale: float


@dataclass(frozen=True, slots=True)
class Rung:
    """One desired grid order. ``level`` 0 is the rung closest to the center."""

    side: PositionSide
    level: int
    price: Decimal
    qty: Decimal


@dataclass(frozen=True, slots=True)
class Ladder:
    """Both sides of the grid around one center price."""

    center: Decimal
    long: tuple[Rung, ...]
    short: tuple[Rung, ...]

    def rungs(self) -> tuple[Rung, ...]:
        """All rungs, LONG first, which is also the order the diff reports them in."""
        return self.long + self.short

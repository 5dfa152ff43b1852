"""Unit conversions shared by the strategy's modules (no state, no Nautilus import)."""

from __future__ import annotations

from decimal import Decimal
from typing import Protocol


class HasDecimal(Protocol):
    """What Nautilus's Price, Quantity and Money have in common."""

    def as_decimal(self) -> Decimal: ...


def exact(value: HasDecimal) -> float:
    """A Nautilus Price/Quantity/Money as the float nearest its decimal value.

    ``float(price)`` goes through a double with representation error
    (60612.99999999999); operators should read the price the venue has.
    """
    return float(value.as_decimal())

"""Snapping prices and quantities onto the exchange grid.

Everything is ``Decimal`` because venue filters are decimal: a float price that
is "almost" a multiple of the tick is rejected by the exchange.
"""

from __future__ import annotations

import math
from decimal import ROUND_FLOOR, ROUND_HALF_EVEN, Decimal, InvalidOperation

from hedgegrid_ops.grid.types import InstrumentRules


def to_decimal(value: float) -> Decimal:
    """Convert a configured float to the decimal the user typed.

    ``Decimal(0.1)`` is ``0.1000000000000000055...``; multiplying a price by that
    can push a value that should sit exactly on a tick just above it, and a
    round-down then costs a whole tick. Going through ``repr`` gives the
    shortest decimal that round-trips, i.e. the number as written in the config.
    """
    as_float = float(value)
    if not math.isfinite(as_float):
        raise ValueError(f"expected a finite number, got {value!r}")
    return Decimal(repr(as_float))


def quantize_price(price: Decimal, tick: Decimal, rounding: str = ROUND_HALF_EVEN) -> Decimal:
    """Return ``price`` as a multiple of ``tick``, rounded with ``rounding``.

    The caller picks the direction because it depends on intent: a bid is
    rounded down so it never becomes more aggressive than configured.
    """
    if tick <= 0:
        raise ValueError(f"tick must be > 0, got {tick}")
    ticks = (price / tick).to_integral_value(rounding=rounding)
    return ticks * tick


def quantize_qty(qty: Decimal, step: Decimal) -> Decimal:
    """Round ``qty`` down to a multiple of ``step``.

    Always down: rounding up could exceed margin or a max-qty filter, and a
    grid that is slightly smaller than configured is the safe failure.
    """
    if step <= 0:
        raise ValueError(f"step must be > 0, got {step}")
    return (qty / step).to_integral_value(rounding=ROUND_FLOOR) * step


def _is_multiple(value: Decimal, unit: Decimal) -> bool:
    try:
        return value % unit == 0
    except InvalidOperation:
        # Quotient beyond the decimal context precision: not something a venue accepts.
        return False


def is_placeable(price: Decimal, qty: Decimal, rules: InstrumentRules) -> bool:
    """Would the venue accept a limit order with this price and quantity?

    Checked locally so that unplaceable rungs are dropped before they cost a
    rejected order (and a rate-limit slot) at the exchange.
    """
    if not (price.is_finite() and qty.is_finite()):
        return False
    if price <= 0 or qty <= 0:
        return False
    if not _is_multiple(price, rules.tick_size) or not _is_multiple(qty, rules.step_size):
        return False
    if qty < rules.min_qty:
        return False
    if rules.max_qty is not None and qty > rules.max_qty:
        return False
    return price * qty >= rules.min_notional

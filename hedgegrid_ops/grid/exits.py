"""Take-profit / stop-loss prices and keeping exit quantity equal to the position.

Exits are sized against the position, not against the grid fill that opened
it: repeat and partial fills then can never leave inventory unprotected or an
exit larger than what it closes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from hedgegrid_ops.grid.quantize import is_placeable, quantize_price, to_decimal
from hedgegrid_ops.grid.types import InstrumentRules, PositionSide
from hedgegrid_ops.grid.units import BPS


def _offset(entry_price: Decimal, step_bps: float, steps: int, name: str) -> Decimal:
    if not entry_price.is_finite() or entry_price <= 0:
        raise ValueError(f"entry_price must be a positive finite price, got {entry_price}")
    if not step_bps > 0:
        raise ValueError(f"step_bps must be > 0, got {step_bps!r}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"{name} must be a positive integer, got {steps!r}")
    return to_decimal(step_bps) * steps / BPS


def take_profit_price(
    side: PositionSide, entry_price: Decimal, step_bps: float, tp_steps: int, tick: Decimal
) -> Decimal:
    """Exit price ``tp_steps`` grid steps in our favour.

    Rounded away from the entry so the tick rounding never eats into the
    configured profit.
    """
    offset = _offset(entry_price, step_bps, tp_steps, "tp_steps")
    if side is PositionSide.LONG:
        return quantize_price(entry_price * (1 + offset), tick, ROUND_CEILING)
    price = quantize_price(entry_price * (1 - offset), tick, ROUND_FLOOR)
    if price <= 0:
        raise ValueError(f"take profit for SHORT at {entry_price} would be <= 0")
    return price


def stop_loss_price(
    side: PositionSide, entry_price: Decimal, step_bps: float, sl_steps: int, tick: Decimal
) -> Decimal:
    """Stop price ``sl_steps`` grid steps against us, rounded away from the entry."""
    offset = _offset(entry_price, step_bps, sl_steps, "sl_steps")
    if side is PositionSide.SHORT:
        return quantize_price(entry_price * (1 + offset), tick, ROUND_CEILING)
    price = quantize_price(entry_price * (1 - offset), tick, ROUND_FLOOR)
    if price <= 0:
        raise ValueError(f"stop loss for LONG at {entry_price} would be <= 0")
    return price


def exit_order_side(side: PositionSide) -> str:
    """Order side that reduces a position leg ("SELL" closes a LONG)."""
    return "SELL" if side is PositionSide.LONG else "BUY"


def entry_order_side(side: PositionSide) -> str:
    """Order side that grows a position leg ("BUY" opens a LONG)."""
    return "BUY" if side is PositionSide.LONG else "SELL"


def exit_shortfall(position_qty: Decimal, open_exit_qty: Decimal) -> Decimal:
    """Quantity of the position not yet covered by working exit orders."""
    return max(Decimal(0), position_qty - open_exit_qty)


def exits_to_trim(position_qty: Decimal, exits: Sequence[tuple[str, Decimal]]) -> tuple[str, ...]:
    """Exit orders to cancel so their total no longer exceeds the position.

    ``exits`` is oldest first. Newest orders are cancelled first because the
    oldest ones hold queue priority at their price. The set is minimal: after
    the newest-first pass, any cancelled order whose quantity fits back into the
    slack is kept (checked oldest first), so un-cancelling any returned id would
    exceed the position again. Ids are returned newest first.
    """
    total = sum((qty for _, qty in exits), Decimal(0))
    if total <= position_qty:
        return ()
    cancelled: list[int] = []  # indices, newest first
    for index in range(len(exits) - 1, -1, -1):
        if total <= position_qty:
            break
        total -= exits[index][1]
        cancelled.append(index)
    kept_back: set[int] = set()
    for index in reversed(cancelled):  # oldest cancelled first
        qty = exits[index][1]
        if total + qty <= position_qty:
            total += qty
            kept_back.add(index)
    return tuple(exits[i][0] for i in cancelled if i not in kept_back)


@dataclass(frozen=True, slots=True)
class ExitOrder:
    """One working exit of a leg and role, oldest first in the lists passed here.

    ``busy``: a cancel or an amendment is in flight, so the venue may still fill
    it at its old size and its fate is not known yet.
    """

    client_order_id: str
    quantity: Decimal
    leaves: Decimal
    pending_cancel: bool
    busy: bool


@dataclass(frozen=True, slots=True)
class ExitPlan:
    """At most one of: exits to cancel, a new exit's quantity, an exit to grow.

    ``covered``: protection already equals the position, nothing to do.
    ``uncovered``: a shortfall that could not be covered (below the venue's
    minimum with no exit to grow), for the strategy to report.
    """

    cancel: tuple[str, ...] = ()
    place_qty: Decimal | None = None
    enlarge: tuple[str, Decimal] | None = None  # (client order id, its new quantity)
    covered: bool = False
    uncovered: Decimal = Decimal(0)


def plan_exits(
    position_qty: Decimal,
    exits: Sequence[ExitOrder],
    price: Decimal | None,
    rules: InstrumentRules,
) -> ExitPlan:
    """Make one leg's exits of one role match its position.

    *Protection* (exits not being cancelled) is trimmed to the position, newest
    first, and topped up when short: a new exit at ``price`` for the shortfall,
    or, when that is too small for the venue, the newest exit grown in place.
    *Exposure* (every exit the venue may still fill) must never exceed the
    position, so nothing is added while any exit is busy; the venue's answer is
    the next event and the plan is made again then. ``price`` is None when the
    leg holds nothing (then there is nothing to cover).
    """
    protecting = [e for e in exits if not e.pending_cancel]
    trim = set(exits_to_trim(position_qty, [(e.client_order_id, e.leaves) for e in protecting]))
    if trim:
        cancel = tuple(e.client_order_id for e in protecting if e.client_order_id in trim)
        return ExitPlan(cancel=cancel)
    if any(e.busy for e in exits):
        return ExitPlan()
    shortfall = exit_shortfall(position_qty, sum((e.leaves for e in protecting), Decimal(0)))
    if shortfall <= 0 or price is None:
        return ExitPlan(covered=True)
    if is_placeable(price, shortfall, rules):
        return ExitPlan(place_qty=shortfall)
    if protecting:
        newest = protecting[-1]
        return ExitPlan(enlarge=(newest.client_order_id, newest.quantity + shortfall))
    return ExitPlan(uncovered=shortfall)

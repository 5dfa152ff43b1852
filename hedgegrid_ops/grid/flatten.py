"""The flatten decision for one leg: what to cancel, what to close and how much, when to stop.

A flatten closes a leg with a marketable immediate-or-cancel order while the
leg's other orders are being cancelled. Those cancels take time to be
acknowledged, and until they are, the venue may still fill the orders: a take
profit whose cancel is in flight can fill after the close was sent. If the close
had been sized to the whole position, the two together would sell more than the
leg holds and flip it. So the close is sized to what the leg holds *minus
everything already working that would reduce it* (exits, cancel in flight or
not, and closes), and the plan is worked out again after every event, so a fill
or a cancel acknowledgement is accounted for as soon as it arrives.

Pure: the strategy describes the leg as plain values and carries out the plan.
Signs: ``held`` is the leg's net position (+ long, - short) whatever the leg is
meant to hold, so a leg that has flipped is closed in its actual direction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from hedgegrid_ops.grid.types import InstrumentRules

MAX_CLOSE_FAILURES = 3
# A close still open this many bars after it was sent is stuck (a partial fill the
# book never completed): cancelling it lets the next plan close the rest.
CLOSE_PATIENCE_BARS = 2


@dataclass(frozen=True, slots=True)
class LegOrder:
    """One of the leg's orders that is not closed yet, as the venue may still fill it."""

    client_order_id: str
    buy: bool
    leaves: Decimal
    is_close: bool
    pending_cancel: bool
    sent_bar: int | None = None  # closes: the bar they were sent on


@dataclass(frozen=True, slots=True)
class Close:
    """A closing order to send: ``buy`` for a short position, ``qty`` > 0."""

    buy: bool
    qty: Decimal


@dataclass(frozen=True, slots=True)
class FlattenPlan:
    """What to do for one leg now.

    ``done``: the leg is flat and nothing of it is left, so it leaves the flatten.
    ``give_up``: why the leg is handed back to the operator (it leaves the
    flatten too); None while the flatten goes on.
    """

    cancel: tuple[str, ...] = ()
    close: Close | None = None
    done: bool = False
    give_up: str | None = None


def reducing_in_flight(held: Decimal, orders: Sequence[LegOrder]) -> Decimal:
    """Quantity the venue may still fill that would move ``held`` toward zero."""
    if held == 0:
        return Decimal(0)
    closing_side_buys = held < 0
    return sum((o.leaves for o in orders if o.buy is closing_side_buys), Decimal(0))


def plan_flatten(
    held: Decimal,
    orders: Sequence[LegOrder],
    *,
    close_failures: int,
    bar: int,
    reference: Decimal | None,
    rules: InstrumentRules,
    failed_bar: int | None = None,
) -> FlattenPlan:
    """Decide the next step of flattening one leg.

    - Every order of the leg that is not a close is cancelled (once).
    - A close still open ``CLOSE_PATIENCE_BARS`` after it was sent is cancelled.
    - At most one close works at a time. A close is sent only for
      ``|held| - reducing_in_flight``: the venue can never fill more than the leg
      holds, whatever order the pending fills and cancels arrive in. A close
      that the orders in flight have overtaken is cancelled.
    - After a refused close (``failed_bar``, the bar of the last refusal) no new close
      is sent before the next bar. A venue refuses a close that exceeds what it
      holds (Binance -2022) when a fill it has made has not reached us yet; re-sending
      the same stale quantity at once would only burn the failure budget in
      milliseconds. By the next bar the venue's fill or position update has arrived.
    - The leg is given up on after ``MAX_CLOSE_FAILURES`` refused closes, or when
      what is left is below the venue's minimum and nothing in flight could
      change that.
    """
    cancel = [o.client_order_id for o in orders if not o.is_close and not o.pending_cancel]
    closes = [o for o in orders if o.is_close]
    for c in closes:
        stuck = c.sent_bar is not None and bar - c.sent_bar >= CLOSE_PATIENCE_BARS
        if stuck and not c.pending_cancel:
            cancel.append(c.client_order_id)
    if held == 0:
        return FlattenPlan(cancel=tuple(cancel), done=not orders)

    size = abs(held)
    in_flight = reducing_in_flight(held, orders)
    if closes:
        if in_flight > size:  # something reduced the leg under the close's feet
            cancel.extend(
                c.client_order_id
                for c in closes
                if not c.pending_cancel and c.client_order_id not in cancel
            )
        return FlattenPlan(cancel=tuple(cancel))
    if close_failures >= MAX_CLOSE_FAILURES:
        return FlattenPlan(cancel=tuple(cancel), give_up=f"failed {MAX_CLOSE_FAILURES} times")
    if failed_bar is not None and failed_bar >= bar:
        return FlattenPlan(cancel=tuple(cancel))  # wait a bar for the venue's news
    closable = size - in_flight
    if closable <= 0:
        return FlattenPlan(cancel=tuple(cancel))  # the orders in flight may close it all
    if not _tradeable(closable, reference, rules):
        if in_flight > 0:
            return FlattenPlan(cancel=tuple(cancel))  # decide once they are filled or gone
        return FlattenPlan(
            cancel=tuple(cancel),
            give_up=f"left {size} below the venue's minimum order size; close it by hand",
        )
    return FlattenPlan(cancel=tuple(cancel), close=Close(buy=held < 0, qty=closable))


def _tradeable(qty: Decimal, reference: Decimal | None, rules: InstrumentRules) -> bool:
    """The venue would accept an order of ``qty`` (notional checked when a price is known)."""
    if qty < rules.min_qty:
        return False
    return reference is None or qty * reference >= rules.min_notional

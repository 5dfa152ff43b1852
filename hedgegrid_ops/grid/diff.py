"""Reconciling desired rungs with live grid orders.

The diff is the only place that decides to cancel or place grid orders, and it
is written so that repeated application converges without ever having two
orders in one (side, level) slot: a slot with a cancel in flight is left alone
until the venue confirms the cancel.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from hedgegrid_ops.grid.types import PositionSide, Rung

_Slot = tuple[PositionSide, int]


@dataclass(frozen=True, slots=True)
class LiveOrder:
    """A GRID order the strategy has open or in flight, with its intended price/qty.

    Submitted-but-not-yet-accepted orders must be included too; leaving them
    out is how a slot ends up with two orders.
    """

    client_order_id: str
    side: PositionSide
    level: int
    price: Decimal
    qty: Decimal
    pending_cancel: bool


@dataclass(frozen=True, slots=True)
class OrderDiff:
    """Cancels to send and rungs to place, each sorted by (side, level)."""

    cancel: tuple[str, ...]
    place: tuple[Rung, ...]

    def is_empty(self) -> bool:
        """True when the live grid already matches the target."""
        return not self.cancel and not self.place


def _slot_key(slot: _Slot) -> tuple[str, int]:
    return (slot[0].value, slot[1])


def diff_ladder(desired: Iterable[Rung], live: Iterable[LiveOrder]) -> OrderDiff:
    """Work out what to cancel and place so that ``live`` becomes ``desired``.

    Pass ``live`` oldest first: when several orders in a slot match, the
    oldest is kept since it has queue priority. Orders already pending cancel
    are never cancelled again, and a slot with one waits for it before placing.
    """
    wanted: dict[_Slot, Rung] = {}
    for rung in desired:
        slot = (rung.side, rung.level)
        if slot in wanted:
            raise ValueError(f"desired rungs contain {rung.side} level {rung.level} twice")
        wanted[slot] = rung

    by_slot: dict[_Slot, list[LiveOrder]] = defaultdict(list)
    for order in live:
        by_slot[(order.side, order.level)].append(order)

    cancel: list[str] = []
    place: list[Rung] = []
    for slot in sorted(wanted.keys() | by_slot.keys(), key=_slot_key):
        target = wanted.get(slot)
        orders = by_slot.get(slot, [])
        kept = False
        blocked = False
        for order in orders:
            if order.pending_cancel:
                blocked = True
                continue
            matches = target is not None and order.price == target.price and order.qty == target.qty
            if matches and not kept:
                kept = True
            else:
                cancel.append(order.client_order_id)
        if target is not None and not kept and not blocked:
            place.append(target)
    return OrderDiff(cancel=tuple(cancel), place=tuple(place))

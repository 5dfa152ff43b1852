"""Our not-yet-closed orders as the strategy's decisions see them.

Kept apart from the strategy so the rules "what counts as live", "what counts as
exit coverage" are stated once and shared by the order diff, the exit
reconciliation and the snapshot.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from nautilus_trader.model.enums import OrderStatus
from nautilus_trader.model.orders import Order

from hedgegrid_ops.grid.diff import LiveOrder
from hedgegrid_ops.grid.order_ids import ParsedOrderId, parse_client_order_id
from hedgegrid_ops.grid.types import OrderRole
from hedgegrid_ops.strategy.ledger import OrderLedger

# Every event looks at every open order's id; the parse of an id never changes.
_parse_tag = functools.lru_cache(maxsize=4096)(parse_client_order_id)


@dataclass(frozen=True, slots=True)
class TrackedOrder:
    """A not-yet-closed order of ours, with what its client order id says about it."""

    order: Order
    tag: ParsedOrderId
    pending_cancel: bool

    @property
    def leaves(self) -> Decimal:
        return self.order.leaves_qty.as_decimal()

    @property
    def limit_price(self) -> Decimal | None:
        return self.order.price.as_decimal() if self.order.has_price else None


def track(orders: Iterable[Order], ledger: OrderLedger) -> list[TrackedOrder]:
    """Our open and in-flight orders (anything not closed), oldest first.

    An order we asked to cancel counts as pending cancel from the moment we ask,
    not only once the venue acknowledges, so it never counts as protection or as
    a rung that is still in place. Orders the ledger marks dead are open in the
    cache but unknown to the venue (see ``OrderDesk.on_cancel_rejected``).
    """
    tracked: list[TrackedOrder] = []
    for order in orders:
        cid = order.client_order_id.value
        if order.is_closed or ledger.is_dead(cid):
            continue
        tag = _parse_tag(cid)
        if tag is None:
            continue
        pending = ledger.cancel_requested(cid) or order.status == OrderStatus.PENDING_CANCEL
        tracked.append(TrackedOrder(order, tag, pending))
    tracked.sort(key=lambda t: t.order.ts_init)
    return tracked


def grid_live_orders(tracked: Iterable[TrackedOrder]) -> list[LiveOrder]:
    """The grid orders as the pure order diff sees them (in-flight ones included)."""
    live: list[LiveOrder] = []
    for t in tracked:
        price = t.limit_price
        if t.tag.role is not OrderRole.GRID or price is None:
            continue
        live.append(
            LiveOrder(
                client_order_id=t.order.client_order_id.value,
                side=t.tag.side,
                level=t.tag.level,
                price=price,
                qty=t.order.quantity.as_decimal(),
                pending_cancel=t.pending_cancel,
            )
        )
    return live

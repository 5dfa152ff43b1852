"""Order plumbing of HedgeGridV1: building, sending and cancelling its orders.

A mixin of ``HedgeGridV1`` (it uses the strategy's order factory, cache, ids and
logger). The one rule that lives here: a cancel is never sent for an order the
venue has not accepted yet. Nautilus sends cancels straight to the execution
client but new orders through the risk engine's queue first, so an early cancel
can overtake its order, be rejected as "not found", and leave the order to go
live afterwards. Such cancels are held and sent when the order is accepted; in
the meantime the order already counts as pending cancel.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_DOWN, ROUND_UP, Decimal
from typing import Any

from nautilus_trader.model.enums import OrderSide, OrderStatus, OrderType, TimeInForce
from nautilus_trader.model.enums import PositionSide as NautilusPositionSide
from nautilus_trader.model.events import OrderAccepted, OrderCancelRejected
from nautilus_trader.model.identifiers import ClientOrderId
from nautilus_trader.model.objects import Price, Quantity
from nautilus_trader.model.position import Position

from hedgegrid_ops.grid.order_ids import format_client_order_id
from hedgegrid_ops.grid.quantize import quantize_price
from hedgegrid_ops.grid.types import OrderRole, PositionSide, Rung
from hedgegrid_ops.strategy.book import TrackedOrder, track
from hedgegrid_ops.strategy.views import exact

SIDES = (PositionSide.LONG, PositionSide.SHORT)
ENTRY_SIDE = {PositionSide.LONG: OrderSide.BUY, PositionSide.SHORT: OrderSide.SELL}
EXIT_SIDE = {PositionSide.LONG: OrderSide.SELL, PositionSide.SHORT: OrderSide.BUY}
NOT_YET_AT_VENUE = (OrderStatus.INITIALIZED, OrderStatus.SUBMITTED)
# How far through the reference price a close may trade (protects against an empty book).
CLOSE_SLIPPAGE_BPS = 100


class OrderPlumbing:
    """Submit / cancel helpers shared by the grid, the exits and the flatten."""

    _cancel_requested: set[str]
    _cancel_on_accept: set[str]
    _active_ids: dict[str, None]
    _cancel_retry_bar: dict[str, int]
    _dead_orders: set[str]
    _seq: int

    def _tracked(self) -> list[TrackedOrder]:
        """Our orders that are not closed, oldest first.

        Looked up from the ids we keep in ``_active_ids`` (added on submit, removed
        on close) so the cost follows the open orders, not the whole order history
        of a long-running session.
        """
        orders = (self.cache.order(ClientOrderId(cid)) for cid in self._active_ids)
        return track(
            (o for o in orders if o is not None), self._cancel_requested, self._dead_orders
        )

    def _submit_grid(self, rung: Rung) -> None:
        order = self.order_factory.limit(
            instrument_id=self.instrument_id,
            order_side=ENTRY_SIDE[rung.side],
            quantity=Quantity(rung.qty, self.instrument.size_precision),
            price=Price(rung.price, self.instrument.price_precision),
            time_in_force=TimeInForce.GTC,
            post_only=True,
            client_order_id=self._order_id(rung.side, OrderRole.GRID, rung.level),
        )
        self._send(order, rung.side)

    def _submit_exit(
        self: Any, side: PositionSide, role: OrderRole, price: Decimal, qty: Decimal
    ) -> None:
        common = {
            "instrument_id": self.instrument_id,
            "order_side": EXIT_SIDE[side],
            "quantity": Quantity(qty, self.instrument.size_precision),
            "time_in_force": TimeInForce.GTC,
            "reduce_only": self._reduce_only_exits,
            "client_order_id": self._order_id(side, role, 0),
        }
        px = Price(price, self.instrument.price_precision)
        if role is OrderRole.TAKE_PROFIT:
            order = self.order_factory.limit(price=px, **common)
        else:
            order = self.order_factory.stop_market(trigger_price=px, **common)
        self._send(order, side)

    def _submit_close(self, side: PositionSide, position: Position) -> None:
        """Close what the leg really holds (its actual side, in case it flipped).

        A marketable limit, immediate-or-cancel, priced ``CLOSE_SLIPPAGE_BPS``
        through the reference price: it trades at once like a market order but
        cannot sweep the book at any price, and whatever it cannot fill now is
        cancelled by the venue, so the flatten loop sends a fresh close for the
        rest instead of waiting on a half-filled order.
        """
        buying = position.side != NautilusPositionSide.LONG
        reference = self.reference_price() or Decimal(str(position.avg_px_open))
        slip = Decimal(CLOSE_SLIPPAGE_BPS) / Decimal(10_000)
        limit = reference * (1 + slip) if buying else reference * (1 - slip)
        rounding = ROUND_UP if buying else ROUND_DOWN
        order = self.order_factory.limit(
            instrument_id=self.instrument_id,
            order_side=OrderSide.BUY if buying else OrderSide.SELL,
            quantity=position.quantity,
            price=Price(
                quantize_price(limit, self.rules.tick_size, rounding),
                self.instrument.price_precision,
            ),
            time_in_force=TimeInForce.IOC,
            reduce_only=self._reduce_only_exits,
            client_order_id=self._order_id(side, OrderRole.FLATTEN, 0),
        )
        self._close_sent_bar[order.client_order_id.value] = self.counters.bars_processed
        self._send(order, side)

    def _send(self, order: Any, side: PositionSide) -> None:
        self.counters.add_submitted("buy" if order.side == OrderSide.BUY else "sell")
        self._jlog.info(
            "order_submitted",
            client_order_id=order.client_order_id.value,
            side=order.side_string(),
            type=order.type_string(),
            qty=exact(order.quantity),
            price=exact(order.price) if order.has_price else None,
            position_id=self.position_ids[side].value,
        )
        self._active_ids[order.client_order_id.value] = None
        self.submit_order(order, position_id=self.position_ids[side])

    def _cancel(self, orders: Iterable[TrackedOrder]) -> int:
        """Request cancels (held until acceptance for orders still on their way)."""
        count = 0
        for t in orders:
            cid = t.order.client_order_id.value
            if t.pending_cancel or cid in self._cancel_requested:
                continue
            self._cancel_requested.add(cid)
            count += 1
            if t.order.status in NOT_YET_AT_VENUE:
                self._cancel_on_accept.add(cid)
            else:
                self.cancel_order(t.order)
        return count

    def _release_held_cancel(self, event: OrderAccepted) -> None:
        cid = event.client_order_id.value
        if cid in self._cancel_on_accept:
            self._cancel_on_accept.discard(cid)
            order = self.cache.order(event.client_order_id)
            if order is not None and order.is_open:
                self.cancel_order(order)

    def _forget_cancel(self, event: OrderCancelRejected) -> None:
        """The venue refused a cancel.

        A market order the venue does not know (the unfilled rest of a partially
        filled close) never rests in its book, so it is dead: stop counting it, and
        the flatten loop sends a fresh close for what is left. Any other order
        counts as live again from the next bar on, when the grid diff or the exit
        reconciliation cancels it once more; retrying at once would ping-pong with
        the venue on every event.
        """
        cid = event.client_order_id.value
        order = self.cache.order(event.client_order_id)
        if order is not None and order.order_type == OrderType.MARKET:
            self._dead_orders.add(cid)
        else:
            self._cancel_retry_bar[cid] = self.counters.bars_processed + 1
        self._jlog.warning("cancel_rejected", client_order_id=cid, reason=event.reason)

    def _release_cancel_retries(self) -> None:
        bar = self.counters.bars_processed
        for cid, due in list(self._cancel_retry_bar.items()):
            if bar >= due:
                del self._cancel_retry_bar[cid]
                self._cancel_requested.discard(cid)

    def _order_closed(self, client_order_id: ClientOrderId) -> None:
        cid = client_order_id.value
        self._active_ids.pop(cid, None)
        self._cancel_requested.discard(cid)
        self._cancel_on_accept.discard(cid)
        self._dead_orders.discard(cid)
        self._cancel_retry_bar.pop(cid, None)
        self._close_sent_bar.pop(cid, None)

    def _order_id(self, side: PositionSide, role: OrderRole, level: int) -> ClientOrderId:
        return ClientOrderId(format_client_order_id(side, role, level, self._next_seq()))

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

"""OrderDesk: builds, sends and cancels HedgeGridV1's orders.

Every order the strategy sends goes through here, so one object numbers them,
counts them, logs them and keeps the ``OrderLedger`` of what is still open and
what we are waiting on. The one rule that lives here: a cancel is never sent
for an order the venue has not accepted yet. Nautilus sends cancels straight to
the execution client but new orders through the risk engine's queue first, so
an early cancel can overtake its order, be rejected as "not found", and leave
the order to go live afterwards. Such cancels are held and sent when the order
is accepted; in the meantime the order already counts as pending cancel.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_DOWN, ROUND_UP, Decimal
from typing import Any

from nautilus_trader.model.enums import OrderSide, OrderStatus, OrderType, TimeInForce
from nautilus_trader.model.events import OrderAccepted, OrderCancelRejected
from nautilus_trader.model.identifiers import ClientOrderId, InstrumentId, PositionId
from nautilus_trader.model.instruments import Instrument
from nautilus_trader.model.objects import Price, Quantity
from nautilus_trader.model.orders import Order
from nautilus_trader.trading.strategy import Strategy

from hedgegrid_ops.commands import REQUEST_TAG_PREFIX, request_id_from_tags
from hedgegrid_ops.grid.order_ids import format_client_order_id
from hedgegrid_ops.grid.quantize import quantize_price
from hedgegrid_ops.grid.types import InstrumentRules, OrderRole, PositionSide, Rung
from hedgegrid_ops.grid.units import BPS
from hedgegrid_ops.strategy.counters import MutableCounters
from hedgegrid_ops.strategy.ledger import OrderLedger
from hedgegrid_ops.strategy.tracked import TrackedOrder, track
from hedgegrid_ops.strategy.units import exact

SIDES = (PositionSide.LONG, PositionSide.SHORT)
ENTRY_SIDE = {PositionSide.LONG: OrderSide.BUY, PositionSide.SHORT: OrderSide.SELL}
EXIT_SIDE = {PositionSide.LONG: OrderSide.SELL, PositionSide.SHORT: OrderSide.BUY}
NOT_YET_AT_VENUE = (OrderStatus.INITIALIZED, OrderStatus.SUBMITTED)
# How far through the reference price a close may trade (protects against an empty book).
CLOSE_SLIPPAGE_BPS = 100


class OrderDesk:
    """Submit / cancel for the grid, the exits and the flatten, with the ledger behind them.

    ``strategy`` is the Nautilus side of the shell: its order factory, cache and
    ``submit_order`` / ``cancel_order`` / ``modify_order`` are all the desk uses.
    """

    def __init__(
        self,
        strategy: Strategy,
        instrument_id: InstrumentId,
        counters: MutableCounters,
        trading_log: Any,
        *,
        reduce_only_exits: bool,
    ) -> None:
        self._strategy = strategy
        self._instrument_id = instrument_id
        self._counters = counters
        self._log = trading_log
        self._reduce_only_exits = reduce_only_exits
        self.position_ids = {s: PositionId(f"{instrument_id}-{s.value}") for s in SIDES}
        self.ledger = OrderLedger()
        # Request id of the control action that is closing each leg (a flatten): its
        # close orders carry it as a ``request_id=<id>`` tag, so fills tie back to it.
        self.close_causes: dict[PositionSide, str] = {}
        self._instrument: Instrument | None = None
        self._rules: InstrumentRules | None = None
        self._seq = 0

    def bind(self, instrument: Instrument, rules: InstrumentRules, first_seq: int) -> None:
        """Ready to trade ``instrument``; order ids continue from ``first_seq``."""
        self._instrument = instrument
        self._rules = rules
        self._seq = first_seq

    # ------------------------------------------------------------------ what is open

    def tracked(self) -> list[TrackedOrder]:
        """Our orders that are not closed, oldest first.

        Looked up from the ledger's ids (added on submit, removed on close) so the
        cost follows the open orders, not the whole order history of a
        long-running session.
        """
        cache = self._strategy.cache
        orders = (cache.order(ClientOrderId(cid)) for cid in self.ledger.open_ids())
        return track((o for o in orders if o is not None), self.ledger)

    # ------------------------------------------------------------------ submitting

    def submit_grid(self, rung: Rung) -> None:
        instrument = self._bound()
        order = self._strategy.order_factory.limit(
            instrument_id=self._instrument_id,
            order_side=ENTRY_SIDE[rung.side],
            quantity=Quantity(rung.qty, instrument.size_precision),
            price=Price(rung.price, instrument.price_precision),
            time_in_force=TimeInForce.GTC,
            post_only=True,
            client_order_id=self._order_id(rung.side, OrderRole.GRID, rung.level),
        )
        self._send(order, rung.side)

    def submit_exit(
        self, side: PositionSide, role: OrderRole, price: Decimal, qty: Decimal
    ) -> None:
        instrument = self._bound()
        common: dict[str, Any] = {
            "instrument_id": self._instrument_id,
            "order_side": EXIT_SIDE[side],
            "quantity": Quantity(qty, instrument.size_precision),
            "time_in_force": TimeInForce.GTC,
            "reduce_only": self._reduce_only_exits,
            "client_order_id": self._order_id(side, role, 0),
        }
        px = Price(price, instrument.price_precision)
        factory = self._strategy.order_factory
        if role is OrderRole.TAKE_PROFIT:
            order = factory.limit(price=px, **common)
        else:
            order = factory.stop_market(trigger_price=px, **common)
        self._send(order, side)

    def submit_close(
        self, side: PositionSide, qty: Decimal, *, buying: bool, reference: Decimal
    ) -> None:
        """Close ``qty`` of leg ``side`` by buying or selling (the leg's actual direction).

        A marketable limit, immediate-or-cancel, priced ``CLOSE_SLIPPAGE_BPS``
        through ``reference``: it trades at once like a market order but cannot
        sweep the book at any price, and whatever it cannot fill now is
        cancelled by the venue, so the flatten sends a fresh close for the rest
        instead of waiting on a half-filled order.
        """
        instrument = self._bound()
        assert self._rules is not None
        slip = Decimal(CLOSE_SLIPPAGE_BPS) / BPS
        limit = reference * (1 + slip) if buying else reference * (1 - slip)
        rounding = ROUND_UP if buying else ROUND_DOWN
        order = self._strategy.order_factory.limit(
            instrument_id=self._instrument_id,
            order_side=OrderSide.BUY if buying else OrderSide.SELL,
            quantity=Quantity(qty, instrument.size_precision),
            price=Price(
                quantize_price(limit, self._rules.tick_size, rounding),
                instrument.price_precision,
            ),
            time_in_force=TimeInForce.IOC,
            reduce_only=self._reduce_only_exits,
            client_order_id=self._order_id(side, OrderRole.FLATTEN, 0),
            tags=[f"{REQUEST_TAG_PREFIX}{cause}"]
            if (cause := self.close_causes.get(side))
            else None,
        )
        self.ledger.close_sent(order.client_order_id.value, self._counters.bars_processed)
        self._send(order, side)

    def enlarge(self, order: Order, qty: Decimal) -> None:
        """Grow a working order in place (the venue applies it atomically)."""
        self.ledger.amend_sent(order.client_order_id.value, qty)
        self._strategy.modify_order(order, quantity=Quantity(qty, order.quantity.precision))

    def _send(self, order: Order, side: PositionSide) -> None:
        self._counters.add_submitted("buy" if order.side == OrderSide.BUY else "sell")
        self._log.info(
            "order_submitted",
            client_order_id=order.client_order_id.value,
            side=order.side_string(),
            type=order.type_string(),
            qty=exact(order.quantity),
            price=exact(order.price) if order.has_price else None,
            position_id=self.position_ids[side].value,
            request_id=request_id_from_tags(order.tags),
        )
        self.ledger.add(order.client_order_id.value)
        self._strategy.submit_order(order, position_id=self.position_ids[side])

    # ------------------------------------------------------------------ cancelling

    def cancel(self, orders: Iterable[TrackedOrder]) -> int:
        """Request cancels (held until acceptance for orders still on their way)."""
        count = 0
        for t in orders:
            if t.pending_cancel:
                continue
            at_venue = t.order.status not in NOT_YET_AT_VENUE
            if not self.ledger.request_cancel(t.order.client_order_id.value, at_venue=at_venue):
                continue
            count += 1
            if at_venue:
                self._strategy.cancel_order(t.order)
        return count

    def cancel_ids(self, tracked: Iterable[TrackedOrder], ids: Iterable[str]) -> int:
        """Cancel, in the order of ``ids``, those of them found among ``tracked``."""
        by_id = {t.order.client_order_id.value: t for t in tracked}
        return self.cancel(by_id[cid] for cid in ids if cid in by_id)

    # ------------------------------------------------------------------ venue answers

    def on_accepted(self, event: OrderAccepted) -> None:
        """Send a cancel that was held while the order was on its way."""
        if not self.ledger.release_held_cancel(event.client_order_id.value):
            return
        order = self._strategy.cache.order(event.client_order_id)
        if order is not None and order.is_open:
            self._strategy.cancel_order(order)

    def on_cancel_rejected(self, event: OrderCancelRejected) -> None:
        """The venue refused a cancel.

        A market order the venue does not know (the unfilled rest of a partially
        filled close) never rests in its book, so it is dead: stop counting it, and
        the flatten sends a fresh close for what is left. Any other order counts
        as live again from the next bar on, when the grid diff or the exit
        reconciliation cancels it once more; retrying at once would ping-pong with
        the venue on every event.
        """
        cid = event.client_order_id.value
        order = self._strategy.cache.order(event.client_order_id)
        if order is not None and order.order_type == OrderType.MARKET:
            self.ledger.mark_dead(cid)
        else:
            self.ledger.retry_cancel_from(cid, self._counters.bars_processed + 1)
        if order is not None and order.is_closed:
            # The usual race: the order filled (or expired) at the venue while our cancel
            # was on its way, so the venue no longer knows it. Expected; not a warning.
            self._log.info(
                "cancel_rejected",
                client_order_id=cid,
                reason=event.reason,
                why=f"order already {order.status_string().lower()} when the cancel arrived",
            )
            return
        self._log.warning("cancel_rejected", client_order_id=cid, reason=event.reason)

    def on_bar(self) -> None:
        """Cancels refused on an earlier bar may be asked again from now on."""
        self.ledger.release_cancel_retries(self._counters.bars_processed)

    def on_closed(self, client_order_id: ClientOrderId) -> None:
        self.ledger.forget(client_order_id.value)

    # ------------------------------------------------------------------ ids

    def next_seq(self) -> int:
        """A fresh sequence number (order ids, timer names)."""
        self._seq += 1
        return self._seq

    def _order_id(self, side: PositionSide, role: OrderRole, level: int) -> ClientOrderId:
        return ClientOrderId(format_client_order_id(side, role, level, self.next_seq()))

    def _bound(self) -> Instrument:
        if self._instrument is None:
            raise RuntimeError("the order desk is used before the strategy started")
        return self._instrument

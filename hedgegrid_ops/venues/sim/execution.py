"""Nautilus's Sandbox execution client with immediate-or-cancel orders that really expire.

Why this exists: the Sandbox runs a backtest matching engine inside a live node, but
the live execution engine applies order events from a queue, later. While the
matching engine handles a new order, that order object is still ``INITIALIZED``, so
the engine's "cancel the unfilled rest of an IOC/FOK" step (guarded by
``order.is_open``) never runs: the rest stays in the simulated book and a later trade
fills it at its limit price, tagged maker. For a flatten close, whose limit is
100 bps through the market, that is a fill at a price nobody offered.

:class:`SimSandboxExecutionClient` checks, right after the matching engine has
handled an IOC or FOK order, whether any of it is still resting and, if so, expires
it the way a venue would: the order leaves the book and an ``OrderCanceled`` event
follows its fills. Everything else is the stock Sandbox.
"""

from __future__ import annotations

from typing import Any

from nautilus_trader.adapters.sandbox.execution import SandboxExecutionClient
from nautilus_trader.core.uuid import UUID4
from nautilus_trader.execution.messages import SubmitOrder
from nautilus_trader.model.enums import TimeInForce
from nautilus_trader.model.events import OrderAccepted, OrderSubmitted
from nautilus_trader.model.orders import Order
from nautilus_trader.model.orders.unpacker import OrderUnpacker

IMMEDIATE = (TimeInForce.IOC, TimeInForce.FOK)


class SimSandboxExecutionClient(SandboxExecutionClient):
    """Sandbox execution where the unfilled rest of an IOC/FOK order expires at once."""

    expired_remainders: int
    """IOC/FOK orders whose unfilled rest this client expired (a partial or no fill)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.expired_remainders = 0

    def submit_order(self, command: SubmitOrder) -> None:
        super().submit_order(command)
        order = command.order
        if order.time_in_force in IMMEDIATE:
            self._expire_rest(order)

    def _expire_rest(self, order: Order) -> None:
        engine = self.exchange.get_matching_engine(order.instrument_id)
        if engine is None or not engine.order_exists(order.client_order_id):
            return  # filled completely, rejected, or already cancelled by the engine
        venue_order_id = self._cache.venue_order_id(order.client_order_id)
        if venue_order_id is None:
            return  # never accepted by the engine, so nothing rests
        # The matching engine refuses to cancel an order it believes is still local
        # (INITIALIZED): hand it a copy in the state the order is really in at the
        # venue. It removes the resting order by client order id and emits
        # OrderCanceled, which the execution engine applies after the queued fills.
        engine.cancel_order(self._as_accepted(order, venue_order_id))
        self.expired_remainders += 1

    def _as_accepted(self, order: Order, venue_order_id: Any) -> Order:
        copy = OrderUnpacker.from_init(order.init_event)
        ts = self.test_clock.timestamp_ns()
        common = {
            "trader_id": order.trader_id,
            "strategy_id": order.strategy_id,
            "instrument_id": order.instrument_id,
            "client_order_id": order.client_order_id,
            "account_id": self.account_id,
            "ts_event": ts,
            "ts_init": ts,
        }
        copy.apply(OrderSubmitted(event_id=UUID4(), **common))
        copy.apply(OrderAccepted(venue_order_id=venue_order_id, event_id=UUID4(), **common))
        return copy

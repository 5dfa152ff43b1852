"""Feed the fill history from Nautilus's message bus, without touching the strategy.

The execution engine publishes a position event on ``events.position.<strategy id>``
right after it applied each fill to the position, so at that moment the position's
``last_event`` is the fill and the change of its ``realized_pnl`` is what that fill
realized. Listening there (rather than to the order events, which come before the
position is updated) gives every fill together with its realized PnL in one step,
on the loop thread; the handler builds one record and queues it for the history's
writer thread, so the strategy never waits on a disk.

Funding payments the strategy books (settled by the venue, or estimated on the
simulated market) arrive on ``FUNDING_BOOKED_TOPIC`` as ``FundingBooked``.
"""

from __future__ import annotations

from typing import Any, Protocol

from nautilus_trader.model.enums import LiquiditySide, OrderSide
from nautilus_trader.model.events import PositionEvent, PositionOpened

from hedgegrid_ops.commands import request_id_from_tags
from hedgegrid_ops.grid.order_ids import parse_client_order_id
from hedgegrid_ops.history.store import FillHistory, FillRecord
from hedgegrid_ops.history.topics import FUNDING_BOOKED_TOPIC, FundingBooked

NS_PER_S = 1e9


class MessageBus(Protocol):
    def subscribe(self, topic: str, handler: Any, priority: int = 0) -> None: ...


def fill_record(fill: Any, order: Any, realized_pnl: float) -> FillRecord:
    """The history record of one Nautilus ``OrderFilled`` (``order``: its cached order)."""
    cid = fill.client_order_id.value
    tag = parse_client_order_id(cid)
    return FillRecord(
        ts=fill.ts_event / NS_PER_S,
        trade_id=fill.trade_id.value,
        client_order_id=cid,
        venue_order_id=fill.venue_order_id.value,
        side="BUY" if fill.order_side == OrderSide.BUY else "SELL",
        position_side=tag.side.value if tag is not None else None,
        price=float(fill.last_px.as_decimal()),
        qty=float(fill.last_qty.as_decimal()),
        commission=float(fill.commission.as_decimal()),
        commission_asset=fill.commission.currency.code,
        liquidity="maker" if fill.liquidity_side == LiquiditySide.MAKER else "taker",
        realized_pnl=realized_pnl,
        request_id=request_id_from_tags(order.tags) if order is not None else None,
    )


class FillRecorder:
    """Position-event handler: one ``FillRecord`` per fill, queued to the history."""

    def __init__(self, cache: Any, history: FillHistory) -> None:
        self._cache = cache
        self._history = history
        # Per position id: realized PnL and trade id as of the last fill we recorded.
        self._realized: dict[str, float] = {}
        self._last_trade: dict[str, str] = {}

    def on_position_event(self, event: PositionEvent) -> None:
        pid = event.position_id.value
        position = self._cache.position(event.position_id)
        fill = position.last_event if position is not None else None
        if fill is None:
            return
        if isinstance(event, PositionOpened):  # a new position (or one reopened) starts at 0
            self._realized.pop(pid, None)
            self._last_trade.pop(pid, None)
        trade_id = fill.trade_id.value
        if self._last_trade.get(pid) == trade_id:
            return  # an event that was not caused by a new fill
        realized = float(event.realized_pnl.as_decimal())
        delta = realized - self._realized.get(pid, 0.0)
        self._realized[pid] = realized
        self._last_trade[pid] = trade_id
        order = self._cache.order(fill.client_order_id)
        self._history.record_fill(fill_record(fill, order, delta))

    def on_funding(self, message: object) -> None:
        if isinstance(message, FundingBooked):
            self._history.record_funding(
                message.ts_event_ns / NS_PER_S, message.paid_usdt, message.estimated
            )


def record_fills(
    msgbus: MessageBus, cache: Any, strategy_id: str, history: FillHistory
) -> FillRecorder:
    """Subscribe a recorder to the strategy's position events and the funding topic."""
    recorder = FillRecorder(cache, history)
    msgbus.subscribe(topic=f"events.position.{strategy_id}", handler=recorder.on_position_event)
    msgbus.subscribe(topic=FUNDING_BOOKED_TOPIC, handler=recorder.on_funding)
    return recorder

"""Feed the event hub from Nautilus's message bus, without touching the strategy.

The execution engine publishes every order event of a strategy on
``events.order.<strategy id>`` before the strategy handles it; subscribing there
gives fills and accepted/cancelled/rejected orders exactly as Nautilus saw them, in
order, on the loop thread. The handler is on the strategy's call path, so it returns
at once when nobody is watching or the event is not one we show, and otherwise only
appends the event itself to the hub: its message is built at flush time, after the
strategy has returned (Nautilus events are immutable, so holding one is safe).

Other components on the node publish stream events without importing the ops layer:
``msgbus.publish("hedgegrid.stream.audit", {...})`` (the prefix, then one of
``PUBLISHABLE``; a JSON-able dict as the message) reaches every client as
``{"type": "audit", "data": {...}}``. Messages that are not dicts are ignored.
"""

from __future__ import annotations

from typing import Any, Protocol

from nautilus_trader.model.enums import LiquiditySide, OrderSide
from nautilus_trader.model.events import (
    OrderAccepted,
    OrderCanceled,
    OrderDenied,
    OrderExpired,
    OrderFilled,
    OrderRejected,
)

from hedgegrid_ops.grid.order_ids import parse_client_order_id
from hedgegrid_ops.ops.events import EventHub, EventType

STREAM_TOPIC_PREFIX = "hedgegrid.stream."

_ORDER_EVENTS: dict[type, str] = {
    OrderAccepted: "accepted",
    OrderCanceled: "cancelled",
    OrderRejected: "rejected",
    OrderDenied: "denied",
    OrderExpired: "expired",
}
_SHOWN: frozenset[type] = frozenset((OrderFilled, *_ORDER_EVENTS))
PUBLISHABLE = frozenset(t.value for t in EventType) - {"snapshot", "heartbeat"}


class MessageBus(Protocol):
    def subscribe(self, topic: str, handler: Any, priority: int = 0) -> None: ...


def _tag(client_order_id: str) -> dict[str, Any]:
    tag = parse_client_order_id(client_order_id)
    if tag is None:
        return {"position_side": None, "role": None, "rung": None}
    return {"position_side": tag.side.value, "role": tag.role.value, "rung": tag.level}


def order_event_message(event: Any) -> tuple[EventType, dict[str, Any]] | None:
    """The stream message for one Nautilus order event, or None for ones we do not show."""
    cid = event.client_order_id.value
    if isinstance(event, OrderFilled):
        return EventType.FILL, {
            "client_order_id": cid,
            **_tag(cid),
            "side": "BUY" if event.order_side == OrderSide.BUY else "SELL",
            "price": float(event.last_px.as_decimal()),
            "qty": float(event.last_qty.as_decimal()),
            "liquidity": "maker" if event.liquidity_side == LiquiditySide.MAKER else "taker",
            "commission": float(event.commission.as_decimal()),
            "trade_id": event.trade_id.value,
            "ts_event": event.ts_event / 1e9,
        }
    kind = _ORDER_EVENTS.get(type(event))
    if kind is None:
        return None
    data: dict[str, Any] = {"event": kind, "client_order_id": cid, **_tag(cid)}
    reason = getattr(event, "reason", None)
    if reason:
        data["reason"] = str(reason)
    data["ts_event"] = event.ts_event / 1e9
    return EventType.ORDER, data


def tap_message_bus(msgbus: MessageBus, strategy_id: str, hub: EventHub) -> None:
    """Subscribe the hub to the strategy's order events and the stream topic prefix."""

    def on_order_event(event: Any) -> None:
        if hub.clients and type(event) in _SHOWN:
            hub.publish_deferred(order_event_message, event)

    def stream_handler(kind: str) -> Any:
        def on_stream_event(data: Any) -> None:
            if hub.clients and isinstance(data, dict):
                hub.publish(kind, data)

        return on_stream_event

    msgbus.subscribe(topic=f"events.order.{strategy_id}", handler=on_order_event)
    for kind in sorted(PUBLISHABLE):
        msgbus.subscribe(topic=f"{STREAM_TOPIC_PREFIX}{kind}", handler=stream_handler(kind))

"""JSON views of a snapshot: pure functions, so the wire shapes are tested without a server.

The shapes are the contract in the operations guide (extra fields allowed); the
OpenAPI document in ``openapi.py`` describes exactly these dictionaries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from hedgegrid_ops.snapshot import (
    OrderView,
    RungView,
    SideState,
    StrategySnapshot,
    TradingState,
)


def side_view(side: SideState) -> dict[str, float]:
    return {
        "inventory_usdt": side.inventory_usdt,
        "quantity": side.quantity,
        "entry_price": side.entry_price,
        "unrealized_pnl": side.unrealized_pnl,
    }


def status_view(snap: StrategySnapshot) -> dict[str, Any]:
    return {
        "running": snap.trading_state == TradingState.RUNNING,
        "trading_state": snap.trading_state.value,
        "state_reason": snap.state_reason,
        "instrument": snap.instrument_id,
        "positions": {"long": side_view(snap.long), "short": side_view(snap.short)},
        "margin_ratio": snap.margin_ratio,
        "open_orders": snap.open_orders,
        "pnl": {
            "realized": snap.realized_pnl,
            "unrealized": snap.unrealized_pnl,
            "total": snap.total_pnl,
        },
        "timestamp": snap.timestamp,
        "balance_usdt": snap.balance_usdt,
        "equity_usdt": snap.equity_usdt,
        "margin_used_usdt": snap.margin_used_usdt,
        "mid_price": snap.mid_price,
        "grid_center": snap.grid_center,
        "regime": snap.regime,
        "throttle": snap.throttle,
        "maker_ratio": snap.maker_ratio,
        "funding": {
            "rate": snap.funding_rate,
            "next_funding_time": snap.next_funding_time,
            "cost_1h_projected_usdt": snap.funding_cost_1h_projected,
            "scale_long": snap.funding_scale_long,
            "scale_short": snap.funding_scale_short,
        },
        "counters": msgspec.structs.asdict(snap.counters),
        "uptime": snap.uptime,
        "last_bar": snap.last_bar_time,
        "last_bar_event_time": snap.last_bar_event_time,
    }


def rung_view(rung: RungView) -> dict[str, Any]:
    return {
        "price": rung.price,
        "qty": rung.qty,
        "rung": rung.rung,
        "client_order_id": rung.client_order_id,
        "status": rung.status,
    }


def ladders_view(snap: StrategySnapshot) -> dict[str, Any]:
    return {
        "timestamp": snap.timestamp,
        "mid_price": snap.mid_price,
        "grid_center": snap.grid_center,
        "throttle": snap.throttle,
        "long_ladder": [rung_view(r) for r in snap.long_ladder],
        "short_ladder": [rung_view(r) for r in snap.short_ladder],
    }


def order_view(order: OrderView) -> dict[str, Any]:
    return {
        "client_order_id": order.client_order_id,
        "side": order.side,
        "position_side": order.position_side,
        "role": order.role,
        "rung": order.rung,
        "order_type": order.order_type,
        "price": order.price,
        "trigger_price": order.trigger_price,
        "quantity": order.quantity,
        "filled_qty": order.filled_qty,
        "status": order.status,
    }


def orders_view(snap: StrategySnapshot) -> dict[str, Any]:
    return {
        "orders": [order_view(o) for o in snap.orders],
        "count": snap.open_orders,
        "timestamp": snap.timestamp,
    }


@dataclass(frozen=True)
class Health:
    """Outcome of the health rule: HTTP status and body."""

    http_status: int
    body: dict[str, Any]


def health_view(
    snap: StrategySnapshot | None,
    node_running: bool,
    now: float,
    max_bar_age: float,
    commands_alive: bool = True,
    venue_problem: str | None = None,
) -> Health:
    """Judge liveness from the latest snapshot and the wall clock.

    "down" means nothing is trading (no snapshot, node stopped, halted); "degraded"
    means the process is up but market data is not arriving, or (live mode) the
    venue connection is down or being recovered (``venue_problem``). The checks are
    ordered so that the most severe reason is the one reported.
    """
    if snap is None:
        body: dict[str, Any] = {
            "uptime": 0.0,
            "last_bar": None,
            "trading_state": "unknown",
            "bar_age_seconds": None,
        }
    else:
        last_bar = snap.last_bar_time
        body = {
            "uptime": max(0.0, now - snap.started_at),
            "last_bar": last_bar,
            "trading_state": snap.trading_state.value,
            "bar_age_seconds": None if last_bar is None else max(0.0, now - last_bar),
        }

    def verdict(status: str, reason: str | None) -> Health:
        out = {"status": status, **body}
        if reason is None:
            return Health(200, out)
        out["reason"] = reason
        return Health(503, out)

    if snap is None:
        return verdict("down", "the strategy has not published any state yet")
    if not node_running:
        return verdict("down", "the trading node is not running")
    if snap.trading_state == TradingState.HALTED:
        why = f": {snap.state_reason}" if snap.state_reason else ""
        return verdict("down", f"trading is halted{why}")
    if not commands_alive:
        return verdict(
            "degraded", "the command consumer has stopped: control commands will time out"
        )
    if venue_problem is not None:
        return verdict("degraded", venue_problem)
    age = body["bar_age_seconds"]
    if age is None:
        return verdict("degraded", "no bar has been processed yet")
    if age > max_bar_age:
        return verdict(
            "degraded",
            f"the last bar was processed {age:.0f}s ago, more than the {max_bar_age:g}s allowed",
        )
    return verdict("healthy", None)

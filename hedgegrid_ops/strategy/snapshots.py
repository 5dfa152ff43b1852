"""Freeze the strategy's live Nautilus state into a ``StrategySnapshot``.

This is the only place that reads Nautilus objects on behalf of the operations
layer; it runs on the loop thread inside the strategy's event handlers, so the
values are consistent with each other at that instant.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any, Protocol

from nautilus_trader.model.currencies import USDT
from nautilus_trader.model.identifiers import Venue
from nautilus_trader.model.objects import Price

from hedgegrid_ops.grid.funding import FundingDecision
from hedgegrid_ops.grid.types import OrderRole, PositionSide, Regime
from hedgegrid_ops.grid.units import NS_PER_SECOND
from hedgegrid_ops.snapshot import (
    KillSwitchView,
    OrderView,
    RungView,
    SideState,
    StrategySnapshot,
    TradingState,
)
from hedgegrid_ops.strategy.counters import MutableCounters
from hedgegrid_ops.strategy.market import MarketState
from hedgegrid_ops.strategy.tracked import TrackedOrder
from hedgegrid_ops.strategy.units import exact


class SnapshotSource(Protocol):
    """What a snapshot reads from the strategy (HedgeGridV1 is one)."""

    instrument_id: Any  # nautilus InstrumentId
    instrument: Any  # nautilus Instrument, None before start
    portfolio: Any
    started_at: float
    trading_state: TradingState
    state_reason: str
    throttle: float
    center: Decimal | None
    market: MarketState
    funding: FundingDecision
    counters: MutableCounters
    closed_realized_pnl: float
    last_bar_time: float | None
    last_bar_event_ns: int | None

    @property
    def regime(self) -> Regime: ...

    def open_position(self, side: PositionSide) -> Any: ...

    def wall_time(self) -> float: ...

    def projected_funding_cost_1h(self) -> float: ...

    def kill_switch_view(self) -> KillSwitchView: ...


def _side_state(strategy: SnapshotSource, side: PositionSide, ref: Decimal | None) -> SideState:
    position = strategy.open_position(side)
    if position is None:
        return SideState(quantity=0.0, entry_price=0.0, inventory_usdt=0.0, unrealized_pnl=0.0)
    qty = position.quantity.as_decimal()
    unrealized = 0.0
    if ref is not None and strategy.instrument is not None:
        px = Price(ref, strategy.instrument.price_precision)
        unrealized = exact(position.unrealized_pnl(px))
    return SideState(
        quantity=float(qty),
        entry_price=float(position.avg_px_open),
        inventory_usdt=float(qty * ref) if ref is not None else 0.0,
        unrealized_pnl=unrealized,
    )


def _view(order: Any, position_side: str, role: str, rung: int | None, status: str) -> OrderView:
    trigger = getattr(order, "trigger_price", None)
    return OrderView(
        client_order_id=order.client_order_id.value,
        side=order.side_string(),
        position_side=position_side,
        role=role,
        rung=rung,
        order_type=order.type_string(),
        price=exact(order.price) if order.has_price else None,
        trigger_price=exact(trigger) if trigger is not None else None,
        quantity=exact(order.quantity),
        filled_qty=exact(order.filled_qty),
        status=status,
    )


def _order_view(t: TrackedOrder) -> OrderView:
    return _view(
        t.order,
        t.tag.side.value,
        t.tag.role.value,
        t.tag.level if t.tag.role is OrderRole.GRID else None,
        "PENDING_CANCEL" if t.pending_cancel else t.order.status_string(),
    )


def _ladder(tracked: list[TrackedOrder], side: PositionSide) -> tuple[RungView, ...]:
    rungs = [
        RungView(
            rung=t.tag.level,
            price=exact(t.order.price),
            qty=exact(t.order.quantity),
            client_order_id=t.order.client_order_id.value,
            status="PENDING_CANCEL" if t.pending_cancel else t.order.status_string(),
        )
        for t in tracked
        if t.tag.role is OrderRole.GRID and t.tag.side is side and not t.pending_cancel
    ]
    return tuple(sorted(rungs, key=lambda r: r.rung))


def _margin_ratio(margin_used: float, equity: float) -> float:
    """Margin in use as a share of equity; with equity gone, any margin is infinitely too much."""
    if equity > 0:
        return margin_used / equity
    return math.inf if margin_used > 0 else 0.0


def foreign_order_view(order: Any) -> OrderView:
    """An open order that is not ours, as /orders lists it (role ``foreign``, no rung)."""
    position_id = order.position_id.value if order.position_id is not None else ""
    side = position_id.rsplit("-", 1)[-1] if position_id else ""
    return _view(order, side, "foreign", None, order.status_string())


def build_snapshot(
    strategy: SnapshotSource, tracked: list[TrackedOrder], foreign: list[Any] | None = None
) -> StrategySnapshot:
    ref = strategy.market.reference_price()
    long_state = _side_state(strategy, PositionSide.LONG, ref)
    short_state = _side_state(strategy, PositionSide.SHORT, ref)
    unrealized = long_state.unrealized_pnl + short_state.unrealized_pnl

    account = strategy.portfolio.account(Venue(strategy.instrument_id.venue.value))
    balance = margin_used = 0.0
    if account is not None:
        total = account.balance_total(USDT)
        locked = account.balance_locked(USDT)
        balance = exact(total) if total is not None else 0.0
        margin_used = exact(locked) if locked is not None else 0.0
    equity = balance + unrealized

    legs = [
        p
        for s in (PositionSide.LONG, PositionSide.SHORT)
        if (p := strategy.open_position(s)) is not None
    ]
    # Realized PnL comes from Nautilus's positions (commissions included): closed ones
    # were summed as their PositionClosed events arrived, open legs carry their own.
    open_realized = sum(exact(p.realized_pnl) for p in legs if p.realized_pnl is not None)
    mid = strategy.market.mid()
    now = strategy.wall_time()
    return StrategySnapshot(
        instrument_id=strategy.instrument_id.value,
        timestamp=now,
        started_at=strategy.started_at,
        trading_state=strategy.trading_state,
        state_reason=strategy.state_reason,
        regime=strategy.regime.value,
        throttle=strategy.throttle,
        mid_price=float(mid) if mid is not None else None,
        grid_center=float(strategy.center) if strategy.center is not None else None,
        long=long_state,
        short=short_state,
        long_ladder=_ladder(tracked, PositionSide.LONG),
        short_ladder=_ladder(tracked, PositionSide.SHORT),
        orders=tuple(_order_view(t) for t in tracked),
        balance_usdt=balance,
        equity_usdt=equity,
        margin_used_usdt=margin_used,
        margin_ratio=_margin_ratio(margin_used, equity),
        realized_pnl=strategy.closed_realized_pnl + open_realized,
        unrealized_pnl=unrealized,
        funding_rate=strategy.market.funding_rate,
        next_funding_time=(
            strategy.market.next_funding_ns / NS_PER_SECOND
            if strategy.market.next_funding_ns is not None
            else None
        ),
        funding_cost_1h_projected=strategy.projected_funding_cost_1h(),
        funding_scale_long=strategy.funding.long_scale,
        funding_scale_short=strategy.funding.short_scale,
        counters=strategy.counters.freeze(),
        foreign_orders=tuple(foreign_order_view(o) for o in foreign or ()),
        last_bar_time=strategy.last_bar_time,
        last_bar_event_time=(
            strategy.last_bar_event_ns / NS_PER_SECOND
            if strategy.last_bar_event_ns is not None
            else None
        ),
        kill_switch=strategy.kill_switch_view(),
        fills_held=sum(p.event_count for p in legs),
    )

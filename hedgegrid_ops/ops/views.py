"""Wire views of a snapshot: pure functions building the ``hedgegrid_ops.api`` Structs.

Pure, so the shapes and the health rule are tested without a server; the Structs
they build are the ones the OpenAPI document is generated from and the client
decodes into.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import msgspec

from hedgegrid_ops.api import (
    Funding,
    Health,
    HealthStatus,
    Ladders,
    Orders,
    Pnl,
    Positions,
    Status,
)
from hedgegrid_ops.grid.types import Regime
from hedgegrid_ops.snapshot import StrategySnapshot, TradingState


def status_view(snap: StrategySnapshot) -> Status:
    return Status(
        running=snap.trading_state == TradingState.RUNNING,
        trading_state=snap.trading_state,
        state_reason=snap.state_reason,
        instrument=snap.instrument_id,
        positions=Positions(long=snap.long, short=snap.short),
        margin_ratio=snap.margin_ratio,  # +Inf (no equity left) is encoded as null
        open_orders=snap.open_orders,
        pnl=Pnl(realized=snap.realized_pnl, unrealized=snap.unrealized_pnl, total=snap.total_pnl),
        timestamp=snap.timestamp,
        balance_usdt=snap.balance_usdt,
        equity_usdt=snap.equity_usdt,
        margin_used_usdt=snap.margin_used_usdt,
        mid_price=snap.mid_price,
        grid_center=snap.grid_center,
        regime=Regime(snap.regime),
        throttle=snap.throttle,
        maker_ratio=snap.maker_ratio,
        funding=Funding(
            rate=snap.funding_rate,
            next_funding_time=snap.next_funding_time,
            cost_1h_projected_usdt=snap.funding_cost_1h_projected,
            scale_long=snap.funding_scale_long,
            scale_short=snap.funding_scale_short,
        ),
        counters=snap.counters,
        uptime=snap.uptime,
        last_bar=snap.last_bar_time,
        last_bar_event_time=snap.last_bar_event_time,
        kill_switch=snap.kill_switch,
    )


def ladders_view(snap: StrategySnapshot) -> Ladders:
    return Ladders(
        timestamp=snap.timestamp,
        mid_price=snap.mid_price,
        grid_center=snap.grid_center,
        throttle=snap.throttle,
        long_ladder=list(snap.long_ladder),
        short_ladder=list(snap.short_ladder),
    )


def orders_view(snap: StrategySnapshot) -> Orders:
    return Orders(
        orders=list(snap.orders),
        count=snap.open_orders,
        timestamp=snap.timestamp,
        foreign_orders=list(snap.foreign_orders),
    )


@dataclass(frozen=True)
class Verdict:
    """Outcome of the health rule: HTTP status and body."""

    http_status: int
    body: Health


def health_view(
    snap: StrategySnapshot | None,
    node_running: bool,
    now: float,
    max_bar_age: float,
    commands_alive: bool = True,
    venue_problem: str | None = None,
    log_problems: Sequence[str] = (),
) -> Verdict:
    """Judge liveness from the latest snapshot and the wall clock.

    "down" means nothing is trading (no snapshot, node stopped, halted); "degraded"
    means the process is up but market data is not arriving, or (live mode) the
    venue connection is down or being recovered (``venue_problem``). The checks are
    ordered so that the most severe reason is the one reported.
    """
    uptime, last_bar, state = 0.0, None, "unknown"
    if snap is not None:
        uptime = max(0.0, now - snap.started_at)
        last_bar, state = snap.last_bar_time, snap.trading_state.value
    age = None if last_bar is None else max(0.0, now - last_bar)

    def verdict(status: HealthStatus, reason: str | None) -> Verdict:
        body = Health(
            status=status,
            uptime=uptime,
            last_bar=last_bar,
            trading_state=state,
            bar_age_seconds=age,
            reason=msgspec.UNSET if reason is None else reason,
        )
        return Verdict(200 if reason is None else 503, body)

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
    if log_problems:  # the audit trail or the logs are not being written
        return verdict("degraded", "; ".join(log_problems))
    if age is None:
        return verdict("degraded", "no bar has been processed yet")
    if age > max_bar_age:
        return verdict(
            "degraded",
            f"the last bar was processed {age:.0f}s ago, more than the {max_bar_age:g}s allowed",
        )
    return verdict("healthy", None)

"""Each kill-switch breaker, driven by the real strategy in a Nautilus BacktestEngine.

Every case switches on one breaker with a limit the generated market crosses (the
unprotected run of the same seed reaches ~0.3 % drawdown, 0.04 BTC per leg, 2,400
USDT notional and a 0.27 % margin ratio within four hours) and checks the whole
reaction: halted with the breaker's name and measured value, both legs flattened
through the flatten path, no grid order after the trip, still halted at the end.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import msgspec
import pytest

from hedgegrid_ops.backtest import run_backtest
from hedgegrid_ops.config import (
    RiskSection,
    StaleDataSection,
    StrategyConfig,
    load_strategy_config,
    load_venue_config,
)
from hedgegrid_ops.grid.order_ids import parse_client_order_id
from hedgegrid_ops.grid.types import OrderRole
from hedgegrid_ops.snapshot import SnapshotStore, StrategySnapshot, TradingState
from tests.support.program import STRATEGY_YAML, VENUE_YAML

MINUTES = 240
OFF = RiskSection(
    max_drawdown_fraction=None,
    max_session_loss_fraction=None,
    max_position_qty=None,
    max_position_notional_usdt=None,
    max_margin_ratio=None,
    stale_data=None,
)
MEASURED = re.compile(r"^(\w+): measured ([0-9.e+-]+) > limit ([0-9.e+-]+)")


def with_risk(**risk: object) -> StrategyConfig:
    config = load_strategy_config(STRATEGY_YAML)
    return msgspec.structs.replace(config, risk=msgspec.structs.replace(OFF, **risk))


@dataclass
class Outcome:
    snapshots: list[StrategySnapshot]
    grid_orders_after_trip: int
    closes_sent: int  # orders with the flatten role
    open_positions: int  # in the engine's cache at the end

    @property
    def last(self) -> StrategySnapshot:
        return self.snapshots[-1]

    @property
    def first_halted(self) -> StrategySnapshot:
        return next(s for s in self.snapshots if s.trading_state is TradingState.HALTED)


def run(config: StrategyConfig, silent: range | None = None, minutes: int = MINUTES) -> Outcome:
    snapshots: list[StrategySnapshot] = []
    store = SnapshotStore()
    store.subscribe(snapshots.append)
    result = run_backtest(
        config, load_venue_config(VENUE_YAML), minutes, store=store, silent_minutes=silent
    )
    try:
        halted = [s for s in snapshots if s.trading_state is TradingState.HALTED]
        trip_ns = int(halted[0].timestamp * 1e9) if halted else None
        grid_after = closes = 0
        for order in result.engine.cache.orders():
            tag = parse_client_order_id(order.client_order_id.value)
            assert tag is not None
            if tag.role is OrderRole.FLATTEN:
                closes += 1
            if tag.role is OrderRole.GRID and trip_ns is not None and order.ts_init > trip_ns:
                grid_after += 1
        open_positions = len(result.engine.cache.positions_open())
    finally:
        result.engine.dispose()
    # The last publish is the node stopping; the strategy must have stayed halted until then.
    return Outcome(snapshots[:-1], grid_after, closes, open_positions)


def assert_halted_by(outcome: Outcome, breaker: str, limit: float) -> float:
    """Halted once by ``breaker`` and flattened by the flatten path; returns the measured value."""
    trip = outcome.first_halted
    match = MEASURED.match(trip.state_reason)
    assert match, trip.state_reason
    name, measured, said_limit = match.group(1), float(match.group(2)), float(match.group(3))
    assert (name, said_limit) == (breaker, limit)
    assert measured > limit
    ks = trip.kill_switch
    assert ks.tripped and ks.breaker == breaker and ks.trips == {breaker: 1}
    assert ks.reason == trip.state_reason
    assert trip.counters.flattens == 1  # control_flatten ran once: the POST /flatten path
    last = outcome.last
    assert last.trading_state is TradingState.HALTED and last.state_reason == trip.state_reason
    assert last.kill_switch.trips == {breaker: 1}, "tripped again while halted"
    assert (last.long.quantity, last.short.quantity) == (0.0, 0.0)
    assert outcome.open_positions == 0  # the engine agrees: nothing left open
    assert last.open_orders == 0
    assert outcome.grid_orders_after_trip == 0
    return measured


def test_max_position_qty_trips_on_the_leg_that_grew() -> None:
    outcome = run(with_risk(max_position_qty="0.02"))
    measured = assert_halted_by(outcome, "max_position_qty", 0.02)
    before = outcome.snapshots[outcome.snapshots.index(outcome.first_halted) - 1]
    assert max(before.long.quantity, before.short.quantity) == pytest.approx(measured)
    assert outcome.closes_sent >= 1


def test_max_position_notional_trips() -> None:
    outcome = run(with_risk(max_position_notional_usdt=1000.0))
    assert_halted_by(outcome, "max_position_notional", 1000.0)


def test_max_margin_ratio_trips() -> None:
    outcome = run(with_risk(max_margin_ratio=0.001))
    assert_halted_by(outcome, "max_margin_ratio", 0.001)


def test_max_drawdown_from_the_peak_trips() -> None:
    outcome = run(with_risk(max_drawdown_fraction=0.002))
    measured = assert_halted_by(outcome, "max_drawdown", 0.002)
    ks = outcome.first_halted.kill_switch
    assert ks.peak_equity is not None and ks.session_start_equity == 10_000.0
    # The measured drawdown is the peak's, within the rounding of the reason text.
    peak_before = max(
        s.equity_usdt for s in outcome.snapshots[: outcome.snapshots.index(outcome.first_halted)]
    )
    assert ks.peak_equity == pytest.approx(peak_before)
    assert measured == pytest.approx(0.002, abs=0.002)


def test_max_session_loss_trips() -> None:
    outcome = run(with_risk(max_session_loss_fraction=0.002))
    assert_halted_by(outcome, "max_session_loss", 0.002)
    assert outcome.first_halted.kill_switch.session_start_equity == 10_000.0


def test_no_breaker_no_halt() -> None:
    outcome = run(with_risk(), minutes=60)
    assert {s.trading_state for s in outcome.snapshots} <= {
        TradingState.STARTING,
        TradingState.RUNNING,
    }
    assert outcome.last.kill_switch.trips == {}


STALE = StaleDataSection(max_age_seconds=30.0, cancel_exits=False, resume_when_fresh=False)


def test_stale_data_cancels_the_grid_keeps_exits_and_stays_halted() -> None:
    outcome = run(with_risk(stale_data=STALE), silent=range(60, 63), minutes=90)
    trip = outcome.first_halted
    assert trip.state_reason.startswith("stale_data: measured ")
    assert trip.kill_switch.breaker == "stale_data" and trip.kill_switch.trips == {"stale_data": 1}
    assert trip.counters.flattens == 0  # no blind market close on a dead feed
    assert not any(o.role == "grid" and o.status != "PENDING_CANCEL" for o in trip.orders)
    before = outcome.snapshots[outcome.snapshots.index(trip) - 1]
    exits_before = {o.client_order_id for o in before.orders if o.role == "take_profit"}
    assert exits_before, "the scenario needs exits working when the feed stops"
    assert exits_before <= {o.client_order_id for o in trip.orders}, "an exit was cancelled"
    # Data came back at minute 63, but resume_when_fresh is off: halted to the end.
    assert outcome.last.trading_state is TradingState.HALTED
    assert outcome.grid_orders_after_trip == 0


def test_stale_data_can_cancel_exits_too() -> None:
    stale = msgspec.structs.replace(STALE, cancel_exits=True)
    outcome = run(with_risk(stale_data=stale), silent=range(60, 63), minutes=70)
    trip = outcome.first_halted
    assert not [o for o in trip.orders if o.status != "PENDING_CANCEL"]
    assert not [o for o in outcome.last.orders if o.role in ("take_profit", "stop_loss")]


def test_stale_data_resumes_by_itself_when_configured() -> None:
    stale = msgspec.structs.replace(STALE, resume_when_fresh=True)
    outcome = run(with_risk(stale_data=stale), silent=range(60, 63), minutes=90)
    states = [s.trading_state for s in outcome.snapshots]
    halted_at = states.index(TradingState.HALTED)
    assert TradingState.RUNNING in states[halted_at:], "never resumed"
    last = outcome.last
    assert last.trading_state is TradingState.RUNNING
    assert last.state_reason.startswith("market data is flowing again")
    assert last.kill_switch.trips == {"stale_data": 1} and not last.kill_switch.tripped
    assert outcome.grid_orders_after_trip > 0  # the grid came back

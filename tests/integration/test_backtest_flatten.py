"""Flattens driven inside a deterministic BacktestEngine run.

The flatten path is exercised on a simulated clock, without sockets or wall-clock
timing: a time alert calls ``control_flatten`` / ``control_start`` between two
market events, exactly where a command from the bus runs in the live service.

The race from the flatten storm (issue 10) is reproduced by making the venue slow
to acknowledge cancels: the flatten cancels a leg's take profit, and before the
cancel reaches the venue the market trades through the take profit and fills it.
A close sized to the whole position would then sell what the take profit already
sold and flip the leg.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from nautilus_trader.backtest.models import LatencyModel
from nautilus_trader.model.events import OrderFilled, OrderPendingCancel

from hedgegrid_ops.backtest import NS_PER_MINUTE, BacktestRun, Scheduled, run_backtest
from hedgegrid_ops.config import load_strategy_config, load_venue_config
from hedgegrid_ops.grid.order_ids import parse_client_order_id
from hedgegrid_ops.grid.types import OrderRole, PositionSide
from hedgegrid_ops.strategy import HedgeGridV1
from hedgegrid_ops.venues.sim.backtest_data import BACKTEST_START_NS
from tests.support.positions import flipped_legs
from tests.support.program import STRATEGY_YAML, VENUE_YAML

NS_PER_S = 1_000_000_000
# A flatten at this minute of the seeded market meets a take profit about to be hit.
RACE_MINUTE = 65.5
SLOW_CANCEL_NS = 10 * NS_PER_S  # under the 15 s flatten watchdog


@dataclass
class Probe:
    """What the strategy looked like at scheduled moments."""

    seen: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, strategy: HedgeGridV1) -> None:
        self.seen.append(
            {
                "state": strategy.trading_state.value,
                "reason": strategy.state_reason,
                "open_legs": [s.value for s in ("LONG", "SHORT") if _open(strategy, s)],
                "open_orders": len(strategy.cache.orders_open(strategy_id=strategy.id)),
                "in_flight": len(strategy.cache.orders_inflight(strategy_id=strategy.id)),
            }
        )


def _open(strategy: HedgeGridV1, side: str) -> bool:
    return strategy.open_position(PositionSide(side)) is not None


def _flatten(side: str) -> Any:
    return lambda s: s.control_flatten(side, "scheduled in the backtest")


def _start(strategy: HedgeGridV1) -> None:
    strategy.control_start("scheduled in the backtest")


def exits_filled_while_cancelling(engine: Any) -> list[str]:
    """Take profits that filled after we had asked to cancel them (the race)."""
    raced = []
    for order in engine.cache.orders():
        tag = parse_client_order_id(order.client_order_id.value)
        if tag is None or tag.role is not OrderRole.TAKE_PROFIT:
            continue
        events = order.events
        asked = [i for i, e in enumerate(events) if isinstance(e, OrderPendingCancel)]
        if asked and any(isinstance(e, OrderFilled) for e in events[asked[0] :]):
            raced.append(order.client_order_id.value)
    return raced


def _run(minutes: int, schedule: list[Scheduled], slow_cancels: bool) -> BacktestRun:
    latency = (
        LatencyModel(base_latency_nanos=1_000_000, cancel_latency_nanos=SLOW_CANCEL_NS)
        if slow_cancels
        else None
    )
    run = run_backtest(
        load_strategy_config(STRATEGY_YAML),
        load_venue_config(VENUE_YAML),
        minutes=minutes,
        schedule=schedule,
        latency_model=latency,
    )
    return run


def test_take_profit_filling_during_the_flatten_does_not_flip_the_leg() -> None:
    probe = Probe()
    run = _run(
        minutes=70,
        schedule=[Scheduled(RACE_MINUTE, _flatten("both")), Scheduled(RACE_MINUTE + 3, probe)],
        slow_cancels=True,
    )
    try:
        raced = exits_filled_while_cancelling(run.engine)
        flipped = flipped_legs(run.engine.cache)
        counters = run.strategy.counters
    finally:
        run.engine.dispose()
    assert raced, "the scenario no longer makes a take profit fill while its cancel is in flight"
    assert flipped == []
    assert counters.flattens == 1
    (after,) = probe.seen
    # (The reason may carry the watchdog's note: a 10 s cancel makes this flatten slow.)
    assert after["reason"].startswith("flattened;"), after
    assert {k: v for k, v in after.items() if k != "reason"} == {
        "state": "paused",
        "open_legs": [],
        "open_orders": 0,
        "in_flight": 0,
    }


@pytest.mark.parametrize("slow_cancels", [False, True], ids=["instant-venue", "slow-cancels"])
def test_repeated_flattens_and_starts_end_flat_and_never_flip(slow_cancels: bool) -> None:
    """An operator's storm, on the simulated clock: flatten, flatten again, start, repeat."""
    schedule: list[Scheduled] = []
    probes: list[Probe] = []
    sides = ("both", "long", "short")
    for cycle in range(10):
        at = 40 + 12 * cycle + 0.5
        probe = Probe()
        probes.append(probe)
        schedule += [
            Scheduled(at, _flatten(sides[cycle % 3])),
            Scheduled(at + 0.2, _flatten("both")),
            Scheduled(at + 3, probe),
            Scheduled(at + 3.1, _start),
        ]
    run = _run(minutes=40 + 12 * 10 + 5, schedule=schedule, slow_cancels=slow_cancels)
    try:
        flipped = flipped_legs(run.engine.cache)
        counters = run.strategy.counters
        grid_orders_after_last_start = [
            o
            for o in run.engine.cache.orders()
            if o.ts_init > BACKTEST_START_NS + int(schedule[-1].after_minutes * NS_PER_MINUTE)
            and (tag := parse_client_order_id(o.client_order_id.value)) is not None
            and tag.role is OrderRole.GRID
        ]
    finally:
        run.engine.dispose()
    assert flipped == []
    assert counters.flattens == 20
    for probe in probes:
        (after,) = probe.seen
        assert after["state"] == "paused", after
        assert after["open_legs"] == [] and after["open_orders"] == 0, after
    assert grid_orders_after_last_start, "the grid did not come back after /start"

"""The real HedgeGridV1 in a Nautilus BacktestEngine over hours of generated market.

Invariants are checked on every snapshot the strategy publishes, i.e. after every
bar, order event and position event.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import pytest
from nautilus_trader.model.enums import OrderStatus
from nautilus_trader.model.events import OrderDenied, OrderRejected

from hedgegrid_ops.backtest import run_backtest
from hedgegrid_ops.config import load_strategy_config, load_venue_config
from hedgegrid_ops.snapshot import SnapshotStore, StrategySnapshot
from tests.support.program import STRATEGY_YAML, VENUE_YAML

MINUTES = 8 * 60
QTY_EPS = 1e-9


@dataclass
class Observer:
    """Checks each published snapshot and remembers what it saw."""

    snapshots: int = 0
    violations: list[str] = field(default_factory=list)
    regimes: set[str] = field(default_factory=set)
    max_long: float = 0.0
    max_short: float = 0.0
    last: StrategySnapshot | None = None

    def __call__(self, snap: StrategySnapshot) -> None:
        self.snapshots += 1
        self.last = snap
        self.regimes.add(snap.regime)
        self.max_long = max(self.max_long, snap.long.quantity)
        self.max_short = max(self.max_short, snap.short.quantity)
        for side, state in (("LONG", snap.long), ("SHORT", snap.short)):
            cover = sum(
                o.quantity - o.filled_qty
                for o in snap.orders
                if o.position_side == side
                and o.role == "take_profit"
                and o.status != "PENDING_CANCEL"
            )
            if abs(cover - state.quantity) > QTY_EPS:
                self.violations.append(
                    f"#{self.snapshots} {side}: exits {cover} != position {state.quantity}"
                )
            exit_sides = {
                o.side for o in snap.orders if o.position_side == side and o.role != "grid"
            }
            if exit_sides - {"SELL" if side == "LONG" else "BUY"}:
                self.violations.append(
                    f"#{self.snapshots} {side}: an exit would add to the position"
                )
        slots = Counter(
            (o.position_side, o.rung)
            for o in snap.orders
            if o.role == "grid" and o.status != "PENDING_CANCEL"
        )
        dupes = [slot for slot, n in slots.items() if n > 1]
        if dupes:
            self.violations.append(f"#{self.snapshots} duplicate live grid orders at {dupes}")


def _run(minutes: int = MINUTES) -> tuple[Observer, dict]:
    observer = Observer()
    store = SnapshotStore()
    store.subscribe(observer)
    strategy_cfg = load_strategy_config(STRATEGY_YAML)
    venue_cfg = load_venue_config(VENUE_YAML)
    run = run_backtest(strategy_cfg, venue_cfg, minutes=minutes, store=store)
    try:
        cache = run.engine.cache
        orders = cache.orders()
        events = [e for o in orders for e in o.events]
        account = run.engine.portfolio.account(run.strategy.instrument_id.venue)
        result = {
            "orders": orders,
            "client_ids": [o.client_order_id.value for o in orders],
            "rejections": [e for e in events if isinstance(e, OrderRejected)],
            "denials": [e for e in events if isinstance(e, OrderDenied)],
            "balance": float(account.balance_total()),
            "starting": run.starting_balance,
            "fills": sum(
                1 for o in orders if o.status in (OrderStatus.FILLED, OrderStatus.PARTIALLY_FILLED)
            ),
            "sides": {o.side_string() for o in orders},
        }
    finally:
        run.engine.dispose()
    return observer, result


@pytest.fixture(scope="module")
def backtest() -> tuple[Observer, dict]:
    return _run()


def test_trades_both_sides_with_fills(backtest: tuple[Observer, dict]) -> None:
    observer, result = backtest
    assert result["sides"] == {"BUY", "SELL"}
    assert result["fills"] > 20
    assert observer.max_long > 0 and observer.max_short > 0  # both legs were held at some point
    assert observer.last is not None and observer.last.counters.bars_processed == MINUTES


def test_exits_cover_positions_after_every_event(backtest: tuple[Observer, dict]) -> None:
    observer, _ = backtest
    assert observer.snapshots > MINUTES  # bars plus order/position events
    assert observer.violations == []


def test_no_duplicate_ids_no_precision_rejections(backtest: tuple[Observer, dict]) -> None:
    _, result = backtest
    ids = result["client_ids"]
    assert len(ids) == len(set(ids))
    assert result["denials"] == []
    reasons = [r.reason for r in result["rejections"]]
    assert not [r for r in reasons if "precision" in r.lower() or "increment" in r.lower()], reasons


def test_realized_pnl_equals_balance_change(backtest: tuple[Observer, dict]) -> None:
    observer, result = backtest
    assert observer.last is not None
    change = result["balance"] - result["starting"]
    assert change != 0.0
    assert observer.last.realized_pnl == pytest.approx(change, abs=1e-6)


def test_regimes_seen_by_strategy(backtest: tuple[Observer, dict]) -> None:
    observer, _ = backtest
    assert {"up", "down", "sideways"} <= observer.regimes


def test_same_seed_same_result() -> None:
    first_obs, first = _run(minutes=180)
    second_obs, second = _run(minutes=180)
    assert first["client_ids"] == second["client_ids"]
    assert first["balance"] == second["balance"]
    assert first_obs.last is not None and second_obs.last is not None
    assert first_obs.last.counters == second_obs.last.counters

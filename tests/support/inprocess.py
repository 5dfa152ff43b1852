"""The ops layer in-process: snapshots, a real ControlTarget stand-in, a served OpsService.

The target is a real implementation of the ControlTarget protocol with a tiny
state machine (no mocks): it is what the bridge and the routes talk to here in
place of the Nautilus strategy, which cannot run in a unit test.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from multidict import CIMultiDictProxy

from hedgegrid_ops.api import FlattenResult, StartResult, StopResult, ThrottleResult
from hedgegrid_ops.commands import CommandConflict, FlattenSide
from hedgegrid_ops.grid.types import PositionSide
from hedgegrid_ops.logs import configure_logging, shutdown_logging
from hedgegrid_ops.ops.bus import CommandBus
from hedgegrid_ops.ops.events import StreamSettings
from hedgegrid_ops.ops.service import OpsService
from hedgegrid_ops.ops.settings import OpsSettings
from hedgegrid_ops.snapshot import (
    Counters,
    OrderView,
    RungView,
    SideState,
    SnapshotStore,
    StrategySnapshot,
    TradingState,
)

API_KEY = "test-key-7f3c9a51d2e84b06"


def make_snapshot(**overrides: Any) -> StrategySnapshot:
    """A plausible mid-session snapshot with distinct values in every field."""
    now = time.time()
    values: dict[str, Any] = {
        "instrument_id": "BTCUSDT-PERP.BINANCE",
        "timestamp": now - 1.5,
        "started_at": now - 3600.25,
        "trading_state": TradingState.RUNNING,
        "state_reason": "start by operator",
        "regime": "sideways",
        "throttle": 0.75,
        "mid_price": 30012.5,
        "grid_center": 30000.0,
        "long": SideState(
            quantity=0.05, entry_price=29950.0, inventory_usdt=1500.625, unrealized_pnl=3.125
        ),
        "short": SideState(
            quantity=0.03, entry_price=30100.0, inventory_usdt=900.375, unrealized_pnl=-1.5
        ),
        "long_ladder": (
            RungView(rung=0, price=29900.0, qty=0.01, client_order_id="O-L0", status="ACCEPTED"),
            RungView(rung=1, price=29800.0, qty=0.01, client_order_id="O-L1", status="ACCEPTED"),
            RungView(rung=2, price=29700.0, qty=0.02, client_order_id="O-L2", status="SUBMITTED"),
        ),
        "short_ladder": (
            RungView(rung=0, price=30100.0, qty=0.01, client_order_id="O-S0", status="ACCEPTED"),
        ),
        "orders": (
            OrderView(
                client_order_id="O-L0",
                side="BUY",
                position_side="LONG",
                role="grid",
                rung=0,
                order_type="LIMIT",
                price=29900.0,
                trigger_price=None,
                quantity=0.01,
                filled_qty=0.0,
                status="ACCEPTED",
            ),
            OrderView(
                client_order_id="O-TP1",
                side="SELL",
                position_side="LONG",
                role="take_profit",
                rung=None,
                order_type="LIMIT",
                price=30150.0,
                trigger_price=None,
                quantity=0.05,
                filled_qty=0.01,
                status="PARTIALLY_FILLED",
            ),
            OrderView(
                client_order_id="O-SL1",
                side="BUY",
                position_side="SHORT",
                role="stop_loss",
                rung=None,
                order_type="STOP_MARKET",
                price=None,
                trigger_price=31000.0,
                quantity=0.03,
                filled_qty=0.0,
                status="ACCEPTED",
            ),
        ),
        "balance_usdt": 10012.75,
        "equity_usdt": 10014.375,
        "margin_used_usdt": 240.5,
        "margin_ratio": 0.024,
        "realized_pnl": 12.75,
        "unrealized_pnl": 1.625,
        "funding_rate": 0.0001,
        "next_funding_time": now + 1800.0,
        "funding_cost_1h_projected": 0.0325,
        "funding_scale_long": 0.9,
        "funding_scale_short": 1.0,
        "counters": Counters(
            bars_processed=61,
            orders_submitted_buy=17,
            orders_submitted_sell=13,
            orders_cancelled=9,
            orders_rejected=2,
            orders_denied=1,
            fills_buy_maker=7,
            fills_buy_taker=1,
            fills_sell_maker=5,
            fills_sell_taker=2,
            funding_payments=3,
            funding_paid_usdt=0.4375,
            flattens=1,
            recenters=4,
        ),
        "last_bar_time": now - 20.0,
        "last_bar_event_time": now - 80.0,
    }
    values.update(overrides)
    return StrategySnapshot(**values)


class NeverAnswers(asyncio.CancelledError):
    """Raised by the target to take the bus consumer down, so queued commands get no answer.

    With synchronous control methods this is the only way a command can go
    unanswered (a slow method blocks the loop but still answers first): it stands
    for a consumer task that was cancelled or died.
    """


@dataclass
class StateTarget:
    """A minimal strategy stand-in honouring the ControlTarget contract."""

    state: TradingState = TradingState.RUNNING
    throttle: float = 1.0
    positions: dict[str, float] = field(default_factory=lambda: {"LONG": 0.05, "SHORT": 0.0})
    open_grid_orders: int = 4
    fail_with: BaseException | None = None
    calls: list[tuple[str, Any, str]] = field(default_factory=list)

    def _enter(self, name: str, arg: Any, reason: str) -> None:
        self.calls.append((name, arg, reason))
        if self.fail_with is not None:
            raise self.fail_with

    def control_start(self, reason: str) -> StartResult:
        self._enter("start", None, reason)
        previous = self.state
        if previous == TradingState.HALTED:
            raise CommandConflict("trading is halted; restart the node to trade again")
        self.state = TradingState.RUNNING
        status = "already_running" if previous == TradingState.RUNNING else "started"
        return StartResult(status=status, previous_state=previous, trading_state=self.state)

    def control_stop(self, reason: str) -> StopResult:
        self._enter("stop", None, reason)
        previous = self.state
        if previous in (TradingState.PAUSED, TradingState.HALTED):
            return StopResult(
                status="already_stopped",
                previous_state=previous,
                trading_state=previous,
                cancelled_orders=0,
            )
        cancelled, self.open_grid_orders = self.open_grid_orders, 0
        self.state = TradingState.PAUSED
        return StopResult(
            status="stopped",
            previous_state=previous,
            trading_state=self.state,
            cancelled_orders=cancelled,
        )

    def control_flatten(self, side: FlattenSide, reason: str) -> FlattenResult:
        self._enter("flatten", side, reason)
        if self.state == TradingState.HALTED:
            raise CommandConflict("trading is halted")
        sides = list(PositionSide) if side == "both" else [PositionSide(side.upper())]
        closing = [s for s in sides if self.positions.get(s.value, 0.0) > 0.0]
        cancelled, self.open_grid_orders = self.open_grid_orders, 0
        self.state = TradingState.FLATTENING
        return FlattenResult(
            status="flattening",
            side=side,
            cancelled_orders=cancelled,
            closing_positions=closing,
            already_closing=[],
            trading_state=self.state,
        )

    def control_set_throttle(self, throttle: float, reason: str) -> ThrottleResult:
        self._enter("set_throttle", throttle, reason)
        previous, self.throttle = self.throttle, throttle
        return ThrottleResult(
            status="unchanged" if previous == throttle else "updated",
            new_throttle=throttle,
            previous_throttle=previous,
        )


@dataclass
class Running:
    """A started service plus everything a test needs to poke at it."""

    service: OpsService
    store: SnapshotStore
    bus: CommandBus
    target: StateTarget | None
    http: aiohttp.ClientSession
    log_dir: Path
    node_up: list[bool]

    @property
    def url(self) -> str:
        return self.service.api_url

    async def call(
        self,
        method: str,
        path: str,
        *,
        key: str | None = None,
        body: Any = None,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, Any], CIMultiDictProxy[str]]:
        """One request; returns (status, parsed JSON body or {}, response headers)."""
        hdrs = dict(headers or {})
        if key is not None:
            hdrs["X-API-Key"] = key
        data = raw if raw is not None else (orjson.dumps(body) if body is not None else None)
        if data is not None:
            hdrs.setdefault("Content-Type", "application/json")
        async with self.http.request(method, self.url + path, data=data, headers=hdrs) as resp:
            payload = await resp.read()
            parsed: dict[str, Any] = {}
            if resp.content_type == "application/json":
                parsed = orjson.loads(payload)
            return resp.status, parsed, resp.headers


def read_log(log_dir: Path, name: str) -> list[str]:
    """Lines of a log file; call after ``shutdown_logging`` has drained the writer."""
    path = log_dir / name
    return path.read_text().splitlines() if path.exists() else []


@asynccontextmanager
async def serve_ops(
    tmp_path: Path,
    *,
    api_key: str | None = None,
    target: StateTarget | None = None,
    snapshot: StrategySnapshot | None = None,
    command_timeout: float = 2.0,
    max_bar_age: float = 120.0,
    prometheus_port: int = 0,
    node_running: Callable[[], bool] | None = None,
    stream: StreamSettings | None = None,
    **settings_overrides: Any,
) -> AsyncIterator[Running]:
    """Start an OpsService on an ephemeral port with JSON logs under ``tmp_path/logs``.

    ``settings_overrides`` are further ``OpsSettings`` fields (limits, CORS, ...).
    Logging is shut down (drained) on exit, so the log files are complete afterwards.
    """
    log_dir = tmp_path / "logs"
    configure_logging(log_dir, stdout=False)
    settings = OpsSettings(
        api_port=0,
        prometheus_port=prometheus_port,
        api_key=api_key,
        command_timeout=command_timeout,
        max_bar_age=max_bar_age,
        **settings_overrides,
    )
    store = SnapshotStore()
    node_up = [True]
    service = OpsService(settings, store, node_running or (lambda: node_up[0]), stream)
    bus = service.bus
    if target is not None:
        bus.attach(target)
    if snapshot is not None:
        store.publish(snapshot)
    await service.start()
    try:
        async with aiohttp.ClientSession() as http:
            yield Running(service, store, bus, target, http, log_dir, node_up)
    finally:
        await service.stop()
        shutdown_logging()

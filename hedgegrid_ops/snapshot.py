"""Immutable views of the strategy that the operations layer reads.

The strategy builds a new ``StrategySnapshot`` after every bar and every order,
fill and position event, and hands it to a ``SnapshotStore``. HTTP handlers and
metrics read only the latest snapshot, so they never touch live Nautilus
objects and never wait on the strategy.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

import msgspec


class TradingState(StrEnum):
    """What the grid is allowed to do right now."""

    STARTING = "starting"  # node built, no bar yet
    RUNNING = "running"  # grid orders are placed and maintained
    PAUSED = "paused"  # grid orders cancelled, exits kept
    FLATTENING = "flattening"  # closing positions; becomes PAUSED once flat
    HALTED = "halted"  # stopped by the kill switch (POST /start re-arms), a fault or shutdown


class SideState(msgspec.Struct, frozen=True):
    """One leg of the hedge-mode position (LONG or SHORT)."""

    quantity: float
    entry_price: float
    inventory_usdt: float
    unrealized_pnl: float


class RungView(msgspec.Struct, frozen=True):
    """A grid rung as actually placed at the venue (or in flight to it)."""

    rung: int
    price: float
    qty: float
    client_order_id: str
    status: str


class OrderView(msgspec.Struct, frozen=True):
    """One open order of this strategy, grid or exit."""

    client_order_id: str
    side: str  # BUY / SELL
    position_side: str  # LONG / SHORT
    role: str  # grid / take_profit / stop_loss / flatten
    rung: int | None
    order_type: str
    price: float | None
    trigger_price: float | None
    quantity: float
    filled_qty: float
    status: str


class Counters(msgspec.Struct, frozen=True):
    """Monotonic counts since start-up (Prometheus counters are fed from these)."""

    bars_processed: int = 0
    orders_submitted_buy: int = 0
    orders_submitted_sell: int = 0
    orders_cancelled: int = 0
    orders_rejected: int = 0
    orders_denied: int = 0
    orders_rejected_margin: int = 0  # -2019 insufficient margin (live venues)
    orders_rejected_post_only: int = 0  # -5022 post-only would take; re-priced next bar
    fills_buy_maker: int = 0
    fills_buy_taker: int = 0
    fills_sell_maker: int = 0
    fills_sell_taker: int = 0
    funding_payments: int = 0
    funding_paid_usdt: float = 0.0
    fees_paid_usdt: float = 0.0  # commissions of our fills since start (USDT)
    flattens: int = 0
    recenters: int = 0


class KillSwitchView(msgspec.Struct, frozen=True):
    """The kill switch as of the snapshot: baselines, the trip in force, trips so far."""

    tripped: bool = False  # a breaker halted trading; POST /start re-arms it
    breaker: str | None = None  # name of the breaker of the last trip
    reason: str | None = None  # breaker, measured value and limit of the last trip
    tripped_at: float | None = None  # wall-clock unix seconds of the last trip
    session_start_equity: float | None = None  # None until the first real account state
    peak_equity: float | None = None
    market_data_age_seconds: float | None = None  # since the last quote or bar (None: none yet)
    trips: dict[str, int] = msgspec.field(default_factory=dict)  # per breaker, kept across restarts


class StrategySnapshot(msgspec.Struct, frozen=True):
    """Everything an operator may ask about, as of ``timestamp`` (unix seconds, wall clock)."""

    instrument_id: str
    timestamp: float
    started_at: float
    trading_state: TradingState
    state_reason: str
    regime: str
    throttle: float
    mid_price: float | None
    grid_center: float | None
    long: SideState
    short: SideState
    long_ladder: tuple[RungView, ...]
    short_ladder: tuple[RungView, ...]
    orders: tuple[OrderView, ...]
    balance_usdt: float
    equity_usdt: float
    margin_used_usdt: float
    margin_ratio: float
    realized_pnl: float
    unrealized_pnl: float
    funding_rate: float
    next_funding_time: float | None
    funding_cost_1h_projected: float
    funding_scale_long: float
    funding_scale_short: float
    counters: Counters
    last_bar_time: float | None  # wall-clock unix seconds when the last bar was processed
    last_bar_event_time: float | None  # the bar's own timestamp (simulated time in paper mode)
    # Live mode: open orders on our instrument that this strategy did not place (by hand,
    # another program). Reported, never touched; role "foreign".
    foreign_orders: tuple[OrderView, ...] = ()
    kill_switch: KillSwitchView = KillSwitchView()
    # Fills Nautilus keeps in memory for the open legs: a position holds every fill
    # applied to it until it goes flat, and no purge can reach an open one.
    fills_held: int = 0

    @property
    def total_pnl(self) -> float:
        return self.realized_pnl + self.unrealized_pnl

    @property
    def uptime(self) -> float:
        return max(0.0, self.timestamp - self.started_at)

    @property
    def maker_ratio(self) -> float:
        c = self.counters
        maker = c.fills_buy_maker + c.fills_sell_maker
        fills = maker + c.fills_buy_taker + c.fills_sell_taker
        return maker / fills if fills else 1.0  # no fills yet: nothing has crossed the spread

    @property
    def open_orders(self) -> int:
        return len(self.orders)

    @property
    def net_inventory_usdt(self) -> float:
        return self.long.inventory_usdt - self.short.inventory_usdt


SnapshotListener = Callable[[StrategySnapshot], None]


class SnapshotStore:
    """Holds the latest snapshot and tells listeners (metrics) when a new one arrives.

    Lives on the event loop thread; ``publish`` is called by the strategy and
    listeners must not raise into it: a failing listener is reported and skipped,
    so observability can never break trading.
    """

    def __init__(self, on_listener_error: Callable[[BaseException], None] | None = None) -> None:
        self._latest: StrategySnapshot | None = None
        self._listeners: list[SnapshotListener] = []
        self._on_listener_error = on_listener_error

    @property
    def latest(self) -> StrategySnapshot | None:
        return self._latest

    def subscribe(self, listener: SnapshotListener) -> None:
        self._listeners.append(listener)
        if self._latest is not None:
            self._call(listener, self._latest)

    def publish(self, snapshot: StrategySnapshot) -> None:
        self._latest = snapshot
        for listener in self._listeners:
            self._call(listener, snapshot)

    def _call(self, listener: SnapshotListener, snapshot: StrategySnapshot) -> None:
        try:
            listener(snapshot)
        except Exception as exc:  # observability must never break trading
            if self._on_listener_error is not None:
                self._on_listener_error(exc)

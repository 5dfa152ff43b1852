"""HedgeGridV1 — a hedge-mode grid strategy as a thin Nautilus shell.

All decisions (ladder, throttle, regime policy, funding guard, order diff, exit
sizing, order ids) are pure functions in ``hedgegrid_ops.grid``; this class
only feeds them market data and Nautilus state and turns their answers into
orders. Everything here runs on the event loop thread: Nautilus delivers data
and order events there, control commands arrive through the ``CommandBus``
consumer on the same loop, and the one timer we use is marshalled onto the loop
by ``LoopBridge``.

Hedge mode: LONG entries are BUY limits on position id ``<instrument>-LONG``,
SHORT entries SELL limits on ``<instrument>-SHORT``; exits trade the opposite way
on the same position id.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal

from nautilus_trader.config import StrategyConfig as NautilusStrategyConfig
from nautilus_trader.model.data import Bar, BarType, FundingRateUpdate, MarkPriceUpdate, QuoteTick
from nautilus_trader.model.enums import LiquiditySide, OrderSide
from nautilus_trader.model.events import (
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderDenied,
    OrderEvent,
    OrderFilled,
    OrderInitialized,
    OrderRejected,
    PositionClosed,
    PositionEvent,
)
from nautilus_trader.model.identifiers import InstrumentId, PositionId
from nautilus_trader.model.instruments import Instrument
from nautilus_trader.model.position import Position
from nautilus_trader.trading.strategy import Strategy

from hedgegrid_ops.config import StrategyConfig
from hedgegrid_ops.grid.diff import diff_ladder
from hedgegrid_ops.grid.funding import FundingDecision, funding_guard, projected_funding_cost
from hedgegrid_ops.grid.ladder import build_ladder, needs_recenter
from hedgegrid_ops.grid.order_ids import parse_client_order_id
from hedgegrid_ops.grid.policy import apply_regime_policy, scale_levels
from hedgegrid_ops.grid.quantize import quantize_price
from hedgegrid_ops.grid.regime import RegimeDetector
from hedgegrid_ops.grid.throttle import apply_throttle
from hedgegrid_ops.grid.types import (
    GridParams,
    InstrumentRules,
    OrderRole,
    PositionSide,
    Regime,
    Rung,
)
from hedgegrid_ops.logs import get_logger
from hedgegrid_ops.loop_bridge import LoopBridge
from hedgegrid_ops.snapshot import SnapshotStore, TradingState
from hedgegrid_ops.strategy.book import grid_live_orders
from hedgegrid_ops.strategy.control import OperatorControl
from hedgegrid_ops.strategy.counters import MutableCounters
from hedgegrid_ops.strategy.exits import ExitKeeper
from hedgegrid_ops.strategy.orders import SIDES, OrderPlumbing
from hedgegrid_ops.strategy.views import build_snapshot, exact


class HedgeGridV1(OperatorControl, ExitKeeper, OrderPlumbing, Strategy):
    """Hedge-mode grid with take-profit coverage, regime and funding awareness, and ops control."""

    def __init__(
        self,
        config: StrategyConfig,
        *,
        reduce_only_exits: bool,
        store: SnapshotStore | None = None,
        loop_bridge: LoopBridge | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(
            NautilusStrategyConfig(
                strategy_id=config.strategy_id,
                order_id_tag=config.strategy_id.split("-", 1)[1],
            )
        )
        self.settings = config
        self.instrument_id = InstrumentId.from_str(config.instrument_id)
        self.bar_type = BarType.from_str(config.bar_type)
        self.position_ids = {s: PositionId(f"{config.instrument_id}-{s.value}") for s in SIDES}
        self._reduce_only_exits = reduce_only_exits
        self._store = store
        self._loop_bridge = loop_bridge
        self._wall_clock = wall_clock
        self._jlog = get_logger("strategy")

        self._base_params = GridParams(
            step_bps=config.grid.grid_step_bps,
            levels_long=config.grid.grid_levels_long,
            levels_short=config.grid.grid_levels_short,
            base_qty=Decimal(config.grid.base_qty),
            qty_scale=config.grid.qty_scale,
        )
        self._regime = RegimeDetector(
            ema_fast=config.regime.ema_fast,
            ema_slow=config.regime.ema_slow,
            adx_period=config.regime.adx_period,
            adx_trend_on=config.regime.adx_trend_on,
            adx_trend_off=config.regime.adx_trend_off,
        )
        self.throttle = config.throttle.initial
        self.trading_state = TradingState.STARTING
        self.state_reason = "waiting for the first bar"
        self.counters = MutableCounters()
        self.instrument: Instrument | None = None
        self.rules: InstrumentRules | None = None
        self.center: Decimal | None = None
        self.bid: Decimal | None = None
        self.ask: Decimal | None = None
        self.mark_price: Decimal | None = None
        self.funding_rate = 0.0
        self.next_funding_ns: int | None = None
        self.funding_interval_hours = 8.0
        self.funding = FundingDecision(1.0, 1.0, None, 0.0, False)
        self.started_at = wall_clock()
        self.last_bar_time: float | None = None
        self.last_bar_event_ns: int | None = None
        self.closed_realized_pnl = 0.0
        self._last_entry_px: dict[PositionSide, Decimal] = {}
        self._cancel_requested: set[str] = set()
        self._flattening: set[PositionSide] = set()
        self._close_failures: dict[PositionSide, int] = {}
        self._close_sent_bar: dict[str, int] = {}
        self._flatten_since: dict[PositionSide, int] = {}
        self._cancel_retry_bar: dict[str, int] = {}
        self._active_ids: dict[str, None] = {}  # not-yet-closed orders, in submission order
        self._dead_orders: set[str] = set()
        self._cancel_on_accept: set[str] = set()
        self._reconciling = False
        self._reported_shortfall: dict[tuple[PositionSide, OrderRole], Decimal] = {}
        self._reconcile_again = False
        self._seq = 0

    # ------------------------------------------------------------------ lifecycle

    def on_start(self) -> None:
        self.instrument = self.cache.instrument(self.instrument_id)
        if self.instrument is None:
            self._set_state(TradingState.HALTED, f"instrument {self.instrument_id} not in cache")
            self._jlog.error("instrument_missing", instrument=str(self.instrument_id))
            self._publish()
            return
        inst = self.instrument
        self.rules = InstrumentRules(
            tick_size=inst.price_increment.as_decimal(),
            step_size=inst.size_increment.as_decimal(),
            min_qty=inst.min_quantity.as_decimal() if inst.min_quantity else Decimal(0),
            min_notional=inst.min_notional.as_decimal() if inst.min_notional else Decimal(0),
            max_qty=inst.max_quantity.as_decimal() if inst.max_quantity else None,
        )
        # Client order ids must be unique per venue account across restarts: start the
        # sequence at the clock's milliseconds (the simulated clock in a backtest, so
        # backtests stay reproducible).
        self._seq = self.clock.timestamp_ns() // 1_000_000
        # Orders already open for this strategy (a venue that reports them after a
        # restart) are ours to track too.
        for order in self.cache.orders_open(strategy_id=self.id):
            self._active_ids[order.client_order_id.value] = None
        self.subscribe_bars(self.bar_type)
        self.subscribe_quote_ticks(self.instrument_id)
        self.subscribe_mark_prices(self.instrument_id)
        self.subscribe_funding_rates(self.instrument_id)
        self._jlog.info(
            "strategy_started",
            instrument=str(self.instrument_id),
            throttle=self.throttle,
            levels_long=self._base_params.levels_long,
            levels_short=self._base_params.levels_short,
        )
        self._publish()

    def on_stop(self) -> None:
        cancelled = self._cancel(t for t in self._tracked() if t.tag.role is OrderRole.GRID)
        self._set_state(TradingState.HALTED, "node stopping")
        self._jlog.info("strategy_stopped", cancelled_grid_orders=cancelled)
        self._publish()

    # ------------------------------------------------------------------ market data

    def on_quote_tick(self, tick: QuoteTick) -> None:
        self.bid = tick.bid_price.as_decimal()
        self.ask = tick.ask_price.as_decimal()

    def on_mark_price(self, mark_price: MarkPriceUpdate) -> None:
        self.mark_price = mark_price.value.as_decimal()

    def on_funding_rate(self, funding_rate: FundingRateUpdate) -> None:
        self.funding_rate = float(funding_rate.rate)
        if funding_rate.interval:
            self.funding_interval_hours = funding_rate.interval / 60
        if funding_rate.next_funding_ns:
            self.next_funding_ns = int(funding_rate.next_funding_ns)

    def on_bar(self, bar: Bar) -> None:
        self.counters.bars_processed += 1
        self._release_cancel_retries()
        self.last_bar_time = self._wall_clock()
        self.last_bar_event_ns = bar.ts_event
        self._regime.update(float(bar.high), float(bar.low), float(bar.close))
        self._account_funding_settlement(bar.ts_event)
        long_notional, short_notional = (self._notional(s) for s in SIDES)
        decision = funding_guard(
            rate=self.funding_rate,
            now_ns=bar.ts_event,
            next_funding_ns=self.next_funding_ns,
            long_notional=long_notional,
            short_notional=short_notional,
            window_minutes=self.settings.funding.window_minutes,
            threshold_bps=self.settings.funding.threshold_bps,
            scale_steps=tuple(self.settings.funding.scale_steps),
        )
        if (decision.long_scale, decision.short_scale) != (
            self.funding.long_scale,
            self.funding.short_scale,
        ):
            self._jlog.info(
                "funding_guard_step",
                rate=self.funding_rate,
                long_scale=decision.long_scale,
                short_scale=decision.short_scale,
                projected_cost_usdt=decision.projected_cost_usdt,
            )
        self.funding = decision
        if self.trading_state is TradingState.STARTING:
            self._set_state(TradingState.RUNNING, "first bar received")
        self._sync_grid(fallback_mid=bar.close.as_decimal())
        self._after_order_book_change()
        self._publish()

    # ------------------------------------------------------------------ order / position events

    def on_order_filled(self, event: OrderFilled) -> None:
        side_key = "buy" if event.order_side == OrderSide.BUY else "sell"
        liquidity = "maker" if event.liquidity_side == LiquiditySide.MAKER else "taker"
        self.counters.add_fill(side_key, liquidity)
        tag = parse_client_order_id(event.client_order_id.value)
        if tag is not None and tag.role is OrderRole.GRID:
            self._last_entry_px[tag.side] = event.last_px.as_decimal()
        self._jlog.info(
            "order_filled",
            client_order_id=event.client_order_id.value,
            side=side_key,
            price=exact(event.last_px),
            qty=exact(event.last_qty),
            liquidity=liquidity,
            position_id=event.position_id.value if event.position_id else None,
        )

    def on_order_accepted(self, event: OrderAccepted) -> None:
        self._release_held_cancel(event)

    def on_order_rejected(self, event: OrderRejected) -> None:
        self.counters.orders_rejected += 1
        self._jlog.warning(
            "order_rejected",
            client_order_id=event.client_order_id.value,
            reason=event.reason,
            due_post_only=event.due_post_only,
        )
        self._on_close_failed(event.client_order_id, f"rejected: {event.reason}")

    def on_order_denied(self, event: OrderDenied) -> None:
        self.counters.orders_denied += 1
        self._jlog.warning(
            "order_denied", client_order_id=event.client_order_id.value, reason=event.reason
        )
        self._on_close_failed(event.client_order_id, f"denied: {event.reason}")

    def on_order_canceled(self, event: OrderCanceled) -> None:
        self.counters.orders_cancelled += 1

    def on_order_cancel_rejected(self, event: OrderCancelRejected) -> None:
        self._forget_cancel(event)

    def on_order_event(self, event: OrderEvent) -> None:
        order = self.cache.order(event.client_order_id)
        if order is not None and order.is_closed:
            self._order_closed(event.client_order_id)
        # A fill is followed by its position event: the position is not yet updated here,
        # so exits are reconciled (and the snapshot published) on that position event.
        # OrderInitialized is raised inside submit_order, before the order is cached.
        if isinstance(event, OrderFilled | OrderInitialized):
            return
        self._after_order_book_change()
        self._publish()

    def on_position_closed(self, event: PositionClosed) -> None:
        self.closed_realized_pnl += exact(event.realized_pnl)
        self._jlog.info(
            "position_closed",
            position_id=event.position_id.value,
            realized_pnl=exact(event.realized_pnl),
        )

    def on_position_event(self, event: PositionEvent) -> None:
        self._after_order_book_change()
        self._publish()

    # ------------------------------------------------------------------ grid

    def desired_params(self) -> GridParams:
        """The grid after throttle, regime policy and funding guard, in that order."""
        params = apply_throttle(
            self._base_params,
            self.throttle,
            self.settings.throttle.passive_level_fraction,
            self.settings.throttle.passive_step_multiplier,
        )
        params = apply_regime_policy(
            params, self._regime.regime, self.settings.regime.counter_trend_level_fraction
        )
        return scale_levels(params, self.funding.long_scale, self.funding.short_scale)

    def _sync_grid(self, fallback_mid: Decimal | None) -> None:
        if self.rules is None:
            return
        tracked = self._tracked()
        desired: list[Rung] = []
        mid = self.mid() or fallback_mid
        if self.trading_state is TradingState.RUNNING and mid is not None:
            if self.center is None or needs_recenter(
                self.center, mid, self.settings.grid.recenter_trigger_bps
            ):
                if self.center is not None:
                    self.counters.recenters += 1
                self.center = quantize_price(mid, self.rules.tick_size)
                self._jlog.info("grid_recentered", center=float(self.center))
            ladder = build_ladder(self.center, self.desired_params(), self.rules)
            desired = [r for r in ladder.rungs() if not self._would_cross(r)]
        diff = diff_ladder(desired, grid_live_orders(tracked))
        by_id = {t.order.client_order_id.value: t for t in tracked}
        self._cancel(by_id[cid] for cid in diff.cancel if cid in by_id)
        for rung in diff.place:
            self._submit_grid(rung)

    def _would_cross(self, rung: Rung) -> bool:
        """A post-only rung on the wrong side of the touch would be rejected: skip it."""
        if rung.side is PositionSide.LONG:
            return self.ask is not None and rung.price >= self.ask
        return self.bid is not None and rung.price <= self.bid

    def _pause(self, reason: str) -> int:
        """Cancel grid orders (exits stay) and stop maintaining the grid.

        A flatten under way keeps its state: it becomes PAUSED when the legs are flat.
        """
        if self.trading_state not in (TradingState.HALTED, TradingState.FLATTENING):
            self._set_state(TradingState.PAUSED, reason)
        return self._cancel(t for t in self._tracked() if t.tag.role is OrderRole.GRID)

    # ------------------------------------------------------------------ state helpers

    def open_position(self, side: PositionSide) -> Position | None:
        position = self.cache.position(self.position_ids[side])
        if position is None or position.is_closed:
            return None
        return position

    @property
    def regime(self) -> Regime:
        return self._regime.regime

    def wall_time(self) -> float:
        return self._wall_clock()

    def projected_funding_cost_1h(self) -> float:
        """Net funding our positions would pay over the next hour at the current rate."""
        long_n, short_n = (self._notional(s) for s in SIDES)
        return projected_funding_cost(
            self.funding_rate,
            long_n,
            short_n,
            hours=1.0,
            interval_hours=self.funding_interval_hours,
        )

    def mid(self) -> Decimal | None:
        if self.bid is None or self.ask is None:
            return None
        return (self.bid + self.ask) / 2

    def reference_price(self) -> Decimal | None:
        """Mark price when the venue sends one, else mid: what inventory and PnL are valued at."""
        return self.mark_price or self.mid()

    def _notional(self, side: PositionSide) -> float:
        position = self.open_position(side)
        price = self.reference_price()
        if position is None or price is None:
            return 0.0
        return float(position.quantity.as_decimal() * price)

    def _account_funding_settlement(self, now_ns: int) -> None:
        """Record the funding our positions would pay when a funding time passes.

        The simulator does not settle funding into the balance, so this is an
        estimate (rate x net notional at the reference price), counted separately.
        """
        if self.next_funding_ns is None or now_ns < self.next_funding_ns:
            return
        long_n, short_n = (self._notional(s) for s in SIDES)
        paid = self.funding_rate * (long_n - short_n)
        if long_n or short_n:
            self.counters.funding_payments += 1
            self.counters.funding_paid_usdt += paid
            self._jlog.info("funding_settlement_estimated", rate=self.funding_rate, paid_usdt=paid)
        self.next_funding_ns = None  # wait for the venue to announce the next one

    def _set_state(self, state: TradingState, reason: str) -> None:
        if state is not self.trading_state:
            self._jlog.info(
                "trading_state", previous=self.trading_state.value, state=state.value, reason=reason
            )
        self.trading_state = state
        self.state_reason = reason

    def _publish(self) -> None:
        if self._store is None:
            return
        self._store.publish(build_snapshot(self, self._tracked()))

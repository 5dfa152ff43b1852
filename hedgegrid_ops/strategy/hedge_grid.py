"""HedgeGridV1 — a hedge-mode grid strategy as a thin Nautilus shell.

All decisions (ladder, throttle, regime policy, funding guard, order diff, exit
sizing, order ids) are pure functions in ``hedgegrid_ops.grid``; this class
feeds them market data and Nautilus state, and its collaborators turn their
answers into orders:

- ``OrderDesk`` (orders.py) sends and cancels every order and keeps the
  ``OrderLedger`` (ledger.py) of what is still open and what we wait on;
- ``ExitKeeper`` (exits.py) keeps each leg's exits equal to its position;
- ``Flattener`` (flatten.py) closes the legs under flatten;
- ``MarketState`` (market.py) holds the latest prices and funding terms;
- ``RiskGuard`` (risk_guard.py) keeps the kill switch's baselines and trips;
- ``build_snapshot`` (snapshots.py) freezes it all for the ops layer.

Everything here runs on the event loop thread: Nautilus delivers data and order
events there, control commands arrive through the ``CommandBus`` consumer on the
same loop, and the one timer we use is marshalled onto the loop by
``LoopBridge``.

Hedge mode: LONG entries are BUY limits on position id ``<instrument>-LONG``,
SHORT entries SELL limits on ``<instrument>-SHORT``; exits trade the opposite way
on the same position id.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import msgspec
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
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.instruments import Instrument
from nautilus_trader.model.orders import Order
from nautilus_trader.model.position import Position
from nautilus_trader.trading.strategy import Strategy

from hedgegrid_ops.api import FlattenResult, StartResult, StopResult, ThrottleResult
from hedgegrid_ops.commands import (
    CommandConflict,
    FlattenSide,
    request_id_from_tags,
    request_id_of,
)
from hedgegrid_ops.config import StrategyConfig
from hedgegrid_ops.grid.breakers import Breaker, RiskSample, Trip
from hedgegrid_ops.grid.diff import diff_ladder
from hedgegrid_ops.grid.funding import FundingDecision, funding_guard, projected_funding_cost
from hedgegrid_ops.grid.ladder import build_ladder, needs_recenter
from hedgegrid_ops.grid.order_ids import parse_client_order_id
from hedgegrid_ops.grid.policy import apply_regime_policy, scale_levels
from hedgegrid_ops.grid.quantize import quantize_price
from hedgegrid_ops.grid.regime import RegimeDetector
from hedgegrid_ops.grid.rejections import (
    INSUFFICIENT_MARGIN,
    POST_ONLY_WOULD_TAKE,
    rejection_code,
)
from hedgegrid_ops.grid.throttle import apply_throttle
from hedgegrid_ops.grid.types import GridParams, InstrumentRules, OrderRole, PositionSide, Regime
from hedgegrid_ops.grid.units import NS_PER_SECOND
from hedgegrid_ops.history.topics import FUNDING_BOOKED_TOPIC, FundingBooked
from hedgegrid_ops.logs import AUDIT, get_logger
from hedgegrid_ops.loop_bridge import LoopBridge
from hedgegrid_ops.snapshot import KillSwitchView, SnapshotStore, StrategySnapshot, TradingState
from hedgegrid_ops.state.records import ControlRecord, SavedState, StateSaver
from hedgegrid_ops.strategy.config import HedgeGridConfig, VenueBehaviour
from hedgegrid_ops.strategy.counters import MutableCounters
from hedgegrid_ops.strategy.exits import ExitKeeper
from hedgegrid_ops.strategy.flatten import Flattener
from hedgegrid_ops.strategy.market import MarketState
from hedgegrid_ops.strategy.orders import SIDES, OrderDesk
from hedgegrid_ops.strategy.publisher import SnapshotPublisher
from hedgegrid_ops.strategy.risk_guard import RiskGuard
from hedgegrid_ops.strategy.snapshots import build_snapshot
from hedgegrid_ops.strategy.tracked import grid_live_orders
from hedgegrid_ops.strategy.units import exact
from hedgegrid_ops.venue_events import FUNDING_TOPIC, FundingPaid

FLATTEN_WATCHDOG_SECONDS = 15.0
MAX_RECONCILE_ROUNDS = 10
STALE_CHECK_TIMER = "stale-data-check"
# The start of the reason a venue that keeps hedge legs apart halts with on a flipped leg.
OUT_OF_SYNC = "positions out of sync with the venue"
SAVED_STATES = {
    TradingState.STARTING: "running",  # a restart goes on to run, as this run was about to
    TradingState.RUNNING: "running",
    TradingState.PAUSED: "paused",
    TradingState.FLATTENING: "paused",  # a flatten ends paused; a restart must not trade
    TradingState.HALTED: "halted",
}


class HedgeGridV1(Strategy):
    """Hedge-mode grid with take-profit coverage, regime and funding awareness, and ops control."""

    config: HedgeGridConfig

    def __init__(
        self,
        config: StrategyConfig,
        *,
        reduce_only_exits: bool,
        venue: VenueBehaviour | None = None,
        store: SnapshotStore | None = None,
        loop_bridge: LoopBridge | None = None,
        wall_clock: Callable[[], float] = time.time,
        saved: SavedState | None = None,
        state_saver: StateSaver | None = None,
    ) -> None:
        venue = venue or VenueBehaviour()
        super().__init__(
            HedgeGridConfig.from_settings(config, claim_external=venue.adopt_open_orders)
        )
        self.venue_behaviour = venue
        self.instrument_id = InstrumentId.from_str(config.instrument_id)
        self.bar_type = BarType.from_str(config.bar_type)
        self._loop_bridge = loop_bridge
        self._snapshots = SnapshotPublisher(
            # The kill switch judges every snapshot, so one is built even with no reader.
            store if store is not None else SnapshotStore(),
            self._guarded_snapshot,
            loop_bridge.soon if loop_bridge is not None else None,
        )
        self._wall_clock = wall_clock
        self.trading_log = get_logger("strategy")  # our JSON trading log; self.log is Nautilus's

        self.counters = MutableCounters()
        self.market = MarketState()
        self.orders = OrderDesk(
            self,
            self.instrument_id,
            self.counters,
            self.trading_log,
            reduce_only_exits=reduce_only_exits,
        )
        self.exits = ExitKeeper(self.orders, config.exits, self.trading_log)
        self.flattener = Flattener(self.orders, self.trading_log)
        self.risk = RiskGuard(
            config.risk.limits(),
            saved=saved.kill_switch if saved is not None else None,
            saver=state_saver,
            wall_clock=wall_clock,
        )
        self._stale_data = config.risk.stale_data
        self._state_saver = state_saver
        self._audit_log = get_logger("strategy", AUDIT)
        self._node_stopping = False
        self._last_data_ns: int | None = None  # last quote or bar (clock time)
        self._state_before_stale: TradingState | None = None

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
        self.instrument: Instrument | None = None
        self.rules: InstrumentRules | None = None
        self.center: Decimal | None = None
        self.funding = FundingDecision(1.0, 1.0, None, 0.0, False)
        self.started_at = wall_clock()
        self.last_bar_time: float | None = None
        self.last_bar_event_ns: int | None = None
        self.closed_realized_pnl = 0.0
        self._reconciling = False
        self._reconcile_again = False
        self._flipped_reported: set[PositionSide] = set()  # legs whose flip was logged
        self._margin_reject_logged_bar = -1
        if saved is not None and saved.control is not None:
            self._restore(saved.control)

    def _restore(self, control: ControlRecord) -> None:
        """Resume the previous run's decisions: its throttle, and paused or halted if it was."""
        self.throttle = control.throttle
        if control.trading_state == "paused":
            self.trading_state = TradingState.PAUSED
            self.state_reason = f"paused before the restart: {control.reason}"
        elif control.trading_state == "halted":
            self.trading_state = TradingState.HALTED
            self.state_reason = control.reason  # the breaker's own words, as before the restart
            self.risk.restore_trip()

    # ------------------------------------------------------------------ lifecycle

    def on_start(self) -> None:
        self.instrument = self.cache.instrument(self.instrument_id)
        if self.instrument is None:
            self._set_state(TradingState.HALTED, f"instrument {self.instrument_id} not in cache")
            self.trading_log.error("instrument_missing", instrument=str(self.instrument_id))
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
        self.orders.bind(inst, self.rules, first_seq=self.clock.timestamp_ns() // 1_000_000)
        # Orders already open for this strategy (a venue that reports them after a
        # restart) are ours to track too.
        for order in self.cache.orders_open(strategy_id=self.id):
            self.orders.ledger.add(order.client_order_id.value)
        if self.venue_behaviour.adopt_open_orders:
            self._report_adopted()
        if self.venue_behaviour.books_funding:
            self.msgbus.subscribe(FUNDING_TOPIC, self._on_funding_paid)
        self.subscribe_bars(self.bar_type)
        self.subscribe_quote_ticks(self.instrument_id)
        self.subscribe_mark_prices(self.instrument_id)
        self.subscribe_funding_rates(self.instrument_id)
        self._start_stale_data_timer()
        self.trading_log.info(
            "strategy_started",
            instrument=str(self.instrument_id),
            throttle=self.throttle,
            levels_long=self._base_params.levels_long,
            levels_short=self._base_params.levels_short,
            trading_state=self.trading_state.value,
        )
        self._publish()

    def on_stop(self) -> None:
        self._node_stopping = True  # "halted: node stopping" is not a decision to keep
        if self.venue_behaviour.keep_exits_on_stop:
            cancelled = self._cancel_grid()
            kept = len(self.orders.tracked()) - cancelled
        else:
            cancelled, kept = self.orders.cancel(self.orders.tracked()), 0
        self._set_state(TradingState.HALTED, "node stopping")
        self.trading_log.info(
            "strategy_stopped", cancelled_orders=cancelled, kept_exit_orders=max(0, kept)
        )
        self._publish()
        self._snapshots.flush()  # the run summary reads this one after the loop stops

    # ------------------------------------------------------------------ market data

    def on_quote_tick(self, tick: QuoteTick) -> None:
        self._last_data_ns = self.clock.timestamp_ns()
        self.market.on_quote(tick)

    def on_mark_price(self, mark_price: MarkPriceUpdate) -> None:
        self.market.on_mark(mark_price)

    def on_funding_rate(self, funding_rate: FundingRateUpdate) -> None:
        self.market.on_funding(funding_rate)

    def on_bar(self, bar: Bar) -> None:
        self.counters.bars_processed += 1
        self._last_data_ns = self.clock.timestamp_ns()
        self.orders.on_bar()
        self.last_bar_time = self._wall_clock()
        self.last_bar_event_ns = bar.ts_event
        self._regime.update(float(bar.high), float(bar.low), float(bar.close))
        if not self.venue_behaviour.books_funding:
            self._account_funding_settlement(bar.ts_event)
        self._apply_funding_guard(bar.ts_event)
        if self.trading_state is TradingState.STARTING:
            self._set_state(TradingState.RUNNING, "first bar received")
        self._sync_grid(fallback_mid=bar.close.as_decimal())
        self._reconcile()
        self._publish()

    # ------------------------------------------------------------------ order / position events

    def on_order_filled(self, event: OrderFilled) -> None:
        side_key = "buy" if event.order_side == OrderSide.BUY else "sell"
        liquidity = "maker" if event.liquidity_side == LiquiditySide.MAKER else "taker"
        self.counters.add_fill(side_key, liquidity)
        if event.commission.currency.code == "USDT":
            self.counters.fees_paid_usdt += exact(event.commission)
        tag = parse_client_order_id(event.client_order_id.value)
        if tag is not None and tag.role is OrderRole.GRID:
            self.exits.note_entry_fill(tag.side, event.last_px.as_decimal())
        order = self.cache.order(event.client_order_id)
        self.trading_log.info(
            "order_filled",
            client_order_id=event.client_order_id.value,
            side=side_key,
            price=exact(event.last_px),
            qty=exact(event.last_qty),
            liquidity=liquidity,
            position_id=event.position_id.value if event.position_id else None,
            commission=exact(event.commission),
            commission_currency=event.commission.currency.code,
            trade_id=event.trade_id.value,
            venue_order_id=event.venue_order_id.value,
            request_id=request_id_from_tags(order.tags) if order is not None else None,
        )

    def on_order_accepted(self, event: OrderAccepted) -> None:
        self.orders.on_accepted(event)

    def on_order_rejected(self, event: OrderRejected) -> None:
        self.counters.orders_rejected += 1
        code = rejection_code(event.reason)
        if code == INSUFFICIENT_MARGIN:
            # The grid re-submits every bar while margin is short: count each, log once a bar.
            self.counters.orders_rejected_margin += 1
            if self._margin_reject_logged_bar != self.counters.bars_processed:
                self._margin_reject_logged_bar = self.counters.bars_processed
                self.trading_log.warning(
                    "orders_rejected_insufficient_margin",
                    client_order_id=event.client_order_id.value,
                    reason=event.reason,
                    total=self.counters.orders_rejected_margin,
                )
        else:
            if event.due_post_only or code == POST_ONLY_WOULD_TAKE:
                # Not retried now: the next bar's grid sync places the rung again
                # (skipping rungs that would cross the touch).
                self.counters.orders_rejected_post_only += 1
            self.trading_log.warning(
                "order_rejected",
                client_order_id=event.client_order_id.value,
                reason=event.reason,
                due_post_only=event.due_post_only,
            )
        self.flattener.on_order_failed(event.client_order_id.value, f"rejected: {event.reason}")

    def on_order_denied(self, event: OrderDenied) -> None:
        self.counters.orders_denied += 1
        self.trading_log.warning(
            "order_denied", client_order_id=event.client_order_id.value, reason=event.reason
        )
        self.flattener.on_order_failed(event.client_order_id.value, f"denied: {event.reason}")

    def on_order_canceled(self, event: OrderCanceled) -> None:
        self.counters.orders_cancelled += 1

    def on_order_cancel_rejected(self, event: OrderCancelRejected) -> None:
        self.orders.on_cancel_rejected(event)

    def on_order_event(self, event: OrderEvent) -> None:
        order = self.cache.order(event.client_order_id)
        if order is not None and order.is_closed:
            self.orders.on_closed(event.client_order_id)
        # A fill is followed by its position event: the position is not yet updated here,
        # so exits are reconciled (and the snapshot published) on that position event.
        # OrderInitialized is raised inside submit_order, before the order is cached.
        if isinstance(event, OrderFilled | OrderInitialized):
            return
        self._reconcile()
        self._publish()

    def on_position_closed(self, event: PositionClosed) -> None:
        self.closed_realized_pnl += exact(event.realized_pnl)
        self.trading_log.info(
            "position_closed",
            position_id=event.position_id.value,
            realized_pnl=exact(event.realized_pnl),
        )

    def on_position_event(self, event: PositionEvent) -> None:
        self._reconcile()
        self._publish()

    # ------------------------------------------------------------------ operator commands
    # The ControlTarget the command bus calls on the loop thread, between strategy
    # events. Each returns what changed or raises CommandConflict when the command
    # makes no sense in the current state; none of them waits for the venue.

    def control_start(self, reason: str) -> StartResult:
        previous = self.trading_state
        if previous is TradingState.HALTED and not self._halted_by_breaker():
            raise CommandConflict(f"trading is halted ({self.state_reason}); restart the service")
        if previous is TradingState.HALTED and self.flattener.legs:
            raise CommandConflict(
                "the kill switch's flatten is still closing positions; start again once flat"
            )
        if previous is TradingState.FLATTENING:
            raise CommandConflict(
                "a flatten is in progress; start again once the positions are closed"
            )
        if previous in (TradingState.RUNNING, TradingState.STARTING):
            return StartResult(
                status="already_running", previous_state=previous, trading_state=previous
            )
        if previous is TradingState.HALTED:
            self.risk.rearm()  # new session baselines: the old drawdown must not trip again
            base = self.risk.baselines
            self._audit(
                "rearm",
                "armed",
                reason=reason,
                session_start_equity=base.session_start_equity if base else None,
            )
        self._set_state(TradingState.RUNNING, reason)
        self._sync_grid(fallback_mid=None)
        self._publish()
        return StartResult(
            status="started", previous_state=previous, trading_state=self.trading_state
        )

    def control_stop(self, reason: str) -> StopResult:
        previous = self.trading_state
        if previous in (TradingState.PAUSED, TradingState.FLATTENING, TradingState.HALTED):
            return StopResult(
                status="already_stopped",
                previous_state=previous,
                trading_state=previous,
                cancelled_orders=0,
            )
        cancelled = self._pause(reason)
        self._publish()
        return StopResult(
            status="stopped",
            previous_state=previous,
            trading_state=self.trading_state,
            cancelled_orders=cancelled,
        )

    def control_set_throttle(self, throttle: float, reason: str) -> ThrottleResult:
        if not 0.0 <= throttle <= 1.0:
            raise ValueError("throttle must be between 0.0 and 1.0")
        previous = self.throttle
        self.throttle = throttle
        self.trading_log.info("throttle_set", previous=previous, throttle=throttle, reason=reason)
        self._save_control()
        self._publish()
        return ThrottleResult(
            status="updated" if throttle != previous else "unchanged",
            new_throttle=throttle,
            previous_throttle=previous,
        )

    def control_flatten(self, side: FlattenSide, reason: str) -> FlattenResult:
        if self.trading_state is TradingState.HALTED and not self._halted_by_breaker():
            raise CommandConflict(
                f"trading is halted ({self.state_reason}); nothing can be flattened"
            )
        sides = SIDES if side == "both" else (PositionSide(side.upper()),)
        flattening = self.flattener.legs
        # Legs whose close is already under way: a second flatten does not send another.
        already = [s for s in sides if s in flattening and self.open_position(s) is not None]
        cancelled = self._pause(reason)
        cancelled += self.orders.cancel(
            t
            for t in self.orders.tracked()
            if t.tag.side in sides and t.tag.role is not OrderRole.FLATTEN
        )
        closing = [
            s
            for s in sides
            if s not in already and self.open_position(s) is not None and s not in flattening
        ]
        request_id = request_id_of(reason)
        for s in sides:
            if s not in already:
                if request_id is not None:
                    self.orders.close_causes[s] = request_id
                else:
                    self.orders.close_causes.pop(s, None)
                self._start_flatten(s, reason)
        self.counters.flattens += 1
        self.trading_log.warning(
            "flatten",
            side=side,
            cancelled_orders=cancelled,
            closing=closing,
            already_closing=already,
        )
        self._reconcile()
        self._publish()
        return FlattenResult(
            status="flattening",
            side=side,
            cancelled_orders=cancelled,
            closing_positions=closing,
            already_closing=already,
            trading_state=self.trading_state,
        )

    # ------------------------------------------------------------------ grid

    def desired_params(self) -> GridParams:
        """The grid after throttle, regime policy and funding guard, in that order."""
        throttle = self.config.throttle
        params = apply_throttle(
            self._base_params,
            self.throttle,
            throttle.passive_level_fraction,
            throttle.passive_step_multiplier,
        )
        params = apply_regime_policy(
            params, self._regime.regime, self.config.regime.counter_trend_level_fraction
        )
        return scale_levels(params, self.funding.long_scale, self.funding.short_scale)

    def _sync_grid(self, fallback_mid: Decimal | None) -> None:
        if self.rules is None:
            return
        tracked = self.orders.tracked()
        desired = []
        mid = self.market.mid() or fallback_mid
        if self.trading_state is TradingState.RUNNING and mid is not None:
            if self.center is None or needs_recenter(
                self.center, mid, self.config.grid.recenter_trigger_bps
            ):
                if self.center is not None:
                    self.counters.recenters += 1
                self.center = quantize_price(mid, self.rules.tick_size)
                self.trading_log.info("grid_recentered", center=float(self.center))
            ladder = build_ladder(self.center, self.desired_params(), self.rules)
            desired = [r for r in ladder.rungs() if not self._would_cross(r.side, r.price)]
        diff = diff_ladder(desired, grid_live_orders(tracked))
        self.orders.cancel_ids(tracked, diff.cancel)
        for rung in diff.place:
            self.orders.submit_grid(rung)

    def _would_cross(self, side: PositionSide, price: Decimal) -> bool:
        """A post-only rung on the wrong side of the touch would be rejected: skip it."""
        if side is PositionSide.LONG:
            return self.market.ask is not None and price >= self.market.ask
        return self.market.bid is not None and price <= self.market.bid

    def _cancel_grid(self) -> int:
        return self.orders.cancel(t for t in self.orders.tracked() if t.tag.role is OrderRole.GRID)

    def _pause(self, reason: str) -> int:
        """Cancel grid orders (exits stay) and stop maintaining the grid.

        A flatten under way keeps its state: it becomes PAUSED when the legs are flat.
        """
        if self.trading_state not in (TradingState.HALTED, TradingState.FLATTENING):
            self._set_state(TradingState.PAUSED, reason)
        return self._cancel_grid()

    # ------------------------------------------------------------------ exits and flatten

    def _reconcile(self) -> None:
        """Run the flatten loop and exit reconciliation until the book is stable.

        Submitting or cancelling can deliver events synchronously (always in a
        backtest), which call back in here; a nested call only marks the book
        dirty and the outer call goes round again with fresh state.
        """
        # Halted by a breaker, the flatten and the exits still run; a stopping node sends nothing.
        if self.rules is None or self._node_stopping:
            return
        if self._reconciling:
            self._reconcile_again = True
            return
        self._reconciling = True
        try:
            for _ in range(MAX_RECONCILE_ROUNDS):
                self._reconcile_again = False
                self._reconcile_once(self.rules)
                if not self._reconcile_again:
                    break
        finally:
            self._reconciling = False

    def _reconcile_once(self, rules: InstrumentRules) -> None:
        tracked = self.orders.tracked()
        gave_up = self.flattener.drive(
            tracked,
            self._positions(),
            bar=self.counters.bars_processed,
            reference=self.market.reference_price(),
            rules=rules,
        )
        for side, why in gave_up:
            # Another leg may still be closing: stay FLATTENING (no /start) until it is done.
            state = TradingState.FLATTENING if self.flattener.legs else TradingState.PAUSED
            self._set_state(state, f"flatten of {side.value} {why}")
        if self.trading_state is TradingState.FLATTENING and not self.flattener.legs:
            self._set_state(TradingState.PAUSED, f"flattened; {self.state_reason}")
        if self._exits_suspended():
            return
        positions = self._positions()  # the flatten may have traded already (backtests)
        flipped = self.exits.reconcile(
            tracked,
            positions,
            skip=self.flattener.legs,
            rules=rules,
            step_bps=self.desired_params().step_bps,
        )
        for side in SIDES:
            if side not in flipped:
                self._flipped_reported.discard(side)
        for side in flipped:
            self._on_leg_flipped(side, positions[side])

    def _on_leg_flipped(self, side: PositionSide, position: Position | None) -> None:
        """A leg holds the other side's position: flatten it, or halt if the venue cannot.

        In paper mode the simulated venue really holds the flipped leg, so it is
        closed. A venue that keeps hedge legs apart cannot hold it: then our books are
        wrong, and a "close" sized from them would open a real position. Trading
        halts (the grid is cancelled, nothing is sent for that leg) with the reason
        in ``/status``; ``TradingHalted`` alerts; a restart re-reads the venue.
        """
        held = position.side.name if position is not None else "no"
        if side not in self._flipped_reported:
            self._flipped_reported.add(side)
            self.trading_log.error("leg_flipped", side=side.value, position=str(position))
        if not self.venue_behaviour.legs_cannot_flip:
            self._start_flatten(side, f"{side.value} leg holds a {held} position")
            self._reconcile_again = True
            return
        if self.trading_state is TradingState.HALTED and self.state_reason.startswith(OUT_OF_SYNC):
            return
        self._set_state(
            TradingState.HALTED,
            f"{OUT_OF_SYNC}: the {side.value} leg shows a {held} position, which the venue's "
            "hedge mode cannot hold; nothing is sent for that leg; check the venue's "
            "positions and restart the service (it re-reads them)",
        )
        self._cancel_grid()
        self._publish()

    def _start_flatten(self, side: PositionSide, reason: str) -> None:
        """Hand ``side`` to the flattener (an operator's flatten, or a leg found flipped)."""
        if not self.flattener.begin(side, self.clock.timestamp_ns()):
            return
        if self.trading_state is not TradingState.HALTED:
            self._set_state(TradingState.FLATTENING, reason)
        self._set_flatten_watchdog()

    def _set_flatten_watchdog(self) -> None:
        """Report a flatten that has not completed in time (the timer fires on a Rust thread)."""
        name = f"flatten-watchdog-{self.orders.next_seq()}"
        handler = self._flatten_watchdog
        callback = self._loop_bridge.wrap(handler) if self._loop_bridge is not None else handler
        self.clock.set_time_alert_ns(
            name,
            self.clock.timestamp_ns() + int(FLATTEN_WATCHDOG_SECONDS * NS_PER_SECOND),
            callback,
        )

    def _flatten_watchdog(self, _event: object) -> None:
        """Flag legs still not flat a watchdog period after *their own* flatten began."""
        deadline = self.clock.timestamp_ns() - int(FLATTEN_WATCHDOG_SECONDS * NS_PER_SECOND) + 1
        overdue = self.flattener.overdue(deadline)
        if overdue and self.trading_state is TradingState.FLATTENING:
            sides = ",".join(s.value for s in overdue)
            self.trading_log.error(
                "flatten_incomplete", sides=sides, waited_s=FLATTEN_WATCHDOG_SECONDS
            )
            self.state_reason = (
                f"flatten of {sides} not confirmed after {FLATTEN_WATCHDOG_SECONDS:g}s"
            )
            self._publish()

    # ------------------------------------------------------------------ funding

    def _apply_funding_guard(self, now_ns: int) -> None:
        long_notional, short_notional = (self._notional(s) for s in SIDES)
        funding = self.config.funding
        decision = funding_guard(
            rate=self.market.funding_rate,
            now_ns=now_ns,
            next_funding_ns=self.market.next_funding_ns,
            long_notional=long_notional,
            short_notional=short_notional,
            window_minutes=funding.window_minutes,
            threshold_bps=funding.threshold_bps,
            scale_steps=tuple(funding.scale_steps),
        )
        if (decision.long_scale, decision.short_scale) != (
            self.funding.long_scale,
            self.funding.short_scale,
        ):
            self.trading_log.info(
                "funding_guard_step",
                rate=self.market.funding_rate,
                long_scale=decision.long_scale,
                short_scale=decision.short_scale,
                projected_cost_usdt=decision.projected_cost_usdt,
            )
        self.funding = decision

    def _account_funding_settlement(self, now_ns: int) -> None:
        """Record the funding our positions would pay when a funding time passes.

        The simulator does not settle funding into the balance, so this is an
        estimate (rate x net notional at the reference price), counted separately.
        """
        market = self.market
        if market.next_funding_ns is None or now_ns < market.next_funding_ns:
            return
        long_n, short_n = (self._notional(s) for s in SIDES)
        paid = market.funding_rate * (long_n - short_n)
        if long_n or short_n:
            self.counters.funding_payments += 1
            self.counters.funding_paid_usdt += paid
            self.trading_log.info(
                "funding_settlement_estimated", rate=market.funding_rate, paid_usdt=paid
            )
            self.msgbus.publish(FUNDING_BOOKED_TOPIC, FundingBooked(paid, now_ns, estimated=True))
        market.next_funding_ns = None  # wait for the venue to announce the next one

    def _on_funding_paid(self, payment: FundingPaid) -> None:
        """A settlement the venue booked (live): count what was actually paid."""
        self.counters.funding_payments += 1
        self.counters.funding_paid_usdt += payment.paid_usdt
        self.msgbus.publish(
            FUNDING_BOOKED_TOPIC,
            FundingBooked(payment.paid_usdt, payment.ts_event_ns, estimated=False),
        )
        self.trading_log.info(
            "funding_settled",
            asset=payment.asset,
            paid_usdt=payment.paid_usdt,
            wallet_balance=payment.wallet_balance,
            total_paid_usdt=self.counters.funding_paid_usdt,
        )
        self._publish()

    def _foreign_orders(self) -> list[Order]:
        """Open orders on our instrument with ids we did not issue (live mode only)."""
        if not self.venue_behaviour.adopt_open_orders:
            return []
        return [
            o
            for o in self.cache.orders_open(instrument_id=self.instrument_id)
            if parse_client_order_id(o.client_order_id.value) is None
        ]

    def _report_adopted(self) -> None:
        """Log what a restart found at the venue: our orders, foreign orders, positions."""
        ours: list[str] = []
        foreign: list[str] = []
        for order in self.cache.orders_open(instrument_id=self.instrument_id):
            cid = order.client_order_id.value
            (ours if parse_client_order_id(cid) is not None else foreign).append(cid)
        positions = {
            s.value: exact(p.quantity) for s in SIDES if (p := self.open_position(s)) is not None
        }
        self.trading_log.info("venue_state_adopted", orders=ours, positions=positions)
        if foreign:
            self.trading_log.warning(
                "foreign_orders_left_alone",
                orders=foreign,
                detail="open orders on this instrument not placed by this strategy; never touched",
            )

    def projected_funding_cost_1h(self) -> float:
        """Net funding our positions would pay over the next hour at the current rate."""
        long_n, short_n = (self._notional(s) for s in SIDES)
        return projected_funding_cost(
            self.market.funding_rate,
            long_n,
            short_n,
            hours=1.0,
            interval_hours=self.market.funding_interval_hours,
        )

    # ------------------------------------------------------------------ state

    def open_position(self, side: PositionSide) -> Position | None:
        position = self.cache.position(self.orders.position_ids[side])
        if position is None or position.is_closed:
            return None
        return position

    def _positions(self) -> dict[PositionSide, Position | None]:
        return {s: self.open_position(s) for s in SIDES}

    @property
    def regime(self) -> Regime:
        return self._regime.regime

    def wall_time(self) -> float:
        return self._wall_clock()

    def _notional(self, side: PositionSide) -> float:
        position = self.open_position(side)
        price = self.market.reference_price()
        if position is None or price is None:
            return 0.0
        return float(position.quantity.as_decimal() * price)

    def _set_state(self, state: TradingState, reason: str) -> None:
        if state is not self.trading_state:
            self.trading_log.info(
                "trading_state", previous=self.trading_state.value, state=state.value, reason=reason
            )
        self.trading_state = state
        self.state_reason = reason
        self._save_control()

    def _save_control(self) -> None:
        """Keep the operator's (or a breaker's) decision for the next start (only enqueues)."""
        if self._state_saver is None or self._node_stopping:
            return
        if self.trading_state is TradingState.HALTED and not self.risk.tripped:
            return  # a halt no breaker decided (instrument missing) is not carried over
        self._state_saver.save_control(
            ControlRecord(
                trading_state=SAVED_STATES[self.trading_state],  # type: ignore[arg-type]
                reason=self.state_reason,
                throttle=self.throttle,
                saved_at=self._wall_clock(),
            )
        )

    def _publish(self) -> None:
        self._snapshots.request()

    def _guarded_snapshot(self) -> StrategySnapshot:
        """The snapshot to publish, after the kill switch has judged it.

        When a breaker trips, the flatten and the halt change what the snapshot shows,
        so the one published is built again after them.
        """
        snapshot = build_snapshot(self, self.orders.tracked(), self._foreign_orders())
        if self._check_breakers(snapshot):
            snapshot = build_snapshot(self, self.orders.tracked(), self._foreign_orders())
        return snapshot

    # ------------------------------------------------------------------ kill switch

    def kill_switch_view(self) -> KillSwitchView:
        guard = self.risk
        trip = guard.last_trip
        base = guard.baselines
        return KillSwitchView(
            tripped=guard.tripped,
            breaker=trip.breaker if trip is not None else None,
            reason=trip.reason if trip is not None else None,
            tripped_at=trip.at if trip is not None else None,
            session_start_equity=base.session_start_equity if base is not None else None,
            peak_equity=base.peak_equity if base is not None else None,
            market_data_age_seconds=self._market_data_age(),
            trips=dict(guard.trips),
        )

    def _halted_by_breaker(self) -> bool:
        return self.risk.tripped and not self._node_stopping

    def _exits_suspended(self) -> bool:
        """A stale-data halt configured to cancel exits must not have them put back."""
        return (
            self._stale_data is not None
            and self._stale_data.cancel_exits
            and self.risk.halted_by_stale_data
        )

    def _market_data_age(self) -> float | None:
        if self._last_data_ns is None:
            return None
        return max(0.0, (self.clock.timestamp_ns() - self._last_data_ns) / NS_PER_SECOND)

    def _check_breakers(self, snap: StrategySnapshot) -> bool:
        """Feed the account to the guard; act on a trip. True when trading was just halted."""
        if self.rules is None or self._node_stopping:
            return False
        trip = self.risk.observe(
            RiskSample(
                equity=snap.equity_usdt,
                long_qty=Decimal(repr(snap.long.quantity)),
                short_qty=Decimal(repr(snap.short.quantity)),
                long_notional=snap.long.inventory_usdt,
                short_notional=snap.short.inventory_usdt,
                margin_ratio=snap.margin_ratio,
                data_age_seconds=None,  # judged on its own timer
            )
        )
        if trip is None:
            return False
        self._trip(trip)
        return True

    def _trip(self, trip: Trip) -> None:
        """A breaker is outside its limit: flatten both legs as POST /flatten does, then halt.

        Stale data is the exception: closing at market on a feed that is not moving
        would be blind, so it cancels the grid (and the exits if configured) instead.
        """
        self.trading_log.error(
            "kill_switch_tripped",
            breaker=trip.breaker.value,
            measured=trip.measured,
            limit=trip.limit,
            reason=trip.reason,
        )
        if trip.breaker is Breaker.STALE_DATA:
            self._state_before_stale = self.trading_state
            keep = (
                (OrderRole.FLATTEN,)
                if self._stale_data and self._stale_data.cancel_exits
                else (
                    OrderRole.FLATTEN,
                    OrderRole.TAKE_PROFIT,
                    OrderRole.STOP_LOSS,
                )
            )
            cancelled = self.orders.cancel(
                t for t in self.orders.tracked() if t.tag.role not in keep
            )
            action: dict[str, Any] = {"cancelled_orders": cancelled, "exits_kept": len(keep) > 1}
        else:
            flatten = self.control_flatten("both", f"kill switch: {trip.reason}")
            action = msgspec.to_builtins(flatten)
        self._set_state(TradingState.HALTED, trip.reason)
        self._audit("trip", "halted", breaker=trip.breaker.value, reason=trip.reason, result=action)
        self._publish()

    def _start_stale_data_timer(self) -> None:
        """Check the market data's age on a timer: when data stops, no event comes to tell."""
        max_age = self.risk.limits.max_data_age_seconds
        if max_age is None:
            return
        self._last_data_ns = self.clock.timestamp_ns()  # no data yet: the age counts from here
        interval_ns = int(min(1.0, max_age / 4) * NS_PER_SECOND)
        handler = self._check_stale_data
        callback = self._loop_bridge.wrap(handler) if self._loop_bridge is not None else handler
        if STALE_CHECK_TIMER not in self.clock.timer_names:
            self.clock.set_timer_ns(STALE_CHECK_TIMER, interval_ns, 0, 0, callback)

    def _check_stale_data(self, _event: object) -> None:
        if self._node_stopping or self.rules is None:
            return
        age = self._market_data_age()
        if self.risk.halted_by_stale_data:
            resume = self._stale_data is not None and self._stale_data.resume_when_fresh
            if resume and self.risk.data_fresh(age):
                self._resume_after_stale(age or 0.0)
            return
        if self.trading_state is TradingState.HALTED:
            return  # halted for another reason already
        trip = self.risk.check_stale(age)
        if trip is not None:
            self._trip(trip)

    def _resume_after_stale(self, age: float) -> None:
        """Market data flows again and the config says to resume by itself."""
        before = self._state_before_stale or TradingState.RUNNING
        state = TradingState.PAUSED if before is TradingState.PAUSED else TradingState.RUNNING
        if self.flattener.legs:
            state = TradingState.FLATTENING
        self.risk.clear_trip()
        self._set_state(state, f"market data is flowing again ({age:.1f}s old)")
        self._audit("recover", "resumed", breaker="stale_data", trading_state=state.value)
        self._sync_grid(fallback_mid=None)
        self._reconcile()
        self._publish()

    def _audit(self, action: str, outcome: str, **fields: Any) -> None:
        """An audit-trail line for what the kill switch did (or an operator did to it)."""
        record = {"action": action, "outcome": outcome, "source": "kill_switch", **fields}
        self._audit_log.warning("kill_switch", **record)
        if self._state_saver is not None:
            self._state_saver.audit({"event": "kill_switch", "ts": self._wall_clock(), **record})

"""Operator control of HedgeGridV1: start, stop, throttle and flatten.

A mixin of ``HedgeGridV1``. These methods are the ``ControlTarget`` the command
bus calls on the loop thread, between strategy events. Each returns what changed
or raises ``CommandConflict`` when the command makes no sense in the current
state; none of them waits for the venue.

Flatten is a loop rather than a one-shot: a leg being flattened has all its
orders cancelled and a market close (IOC) for what it really holds; after every
event the loop checks the leg again and sends a new close when the position is
still open with no close in flight (a partial fill, or a fill of an order that
was still on its way when the flatten began). A leg is done when it is flat and
none of its orders is left; then trading is paused until ``/start``.
"""

from __future__ import annotations

from typing import Any

from nautilus_trader.model.enums import PositionSide as NautilusPositionSide
from nautilus_trader.model.identifiers import ClientOrderId
from nautilus_trader.model.position import Position

from hedgegrid_ops.commands import CommandConflict
from hedgegrid_ops.grid.order_ids import parse_client_order_id
from hedgegrid_ops.grid.types import OrderRole, PositionSide
from hedgegrid_ops.snapshot import TradingState
from hedgegrid_ops.strategy.book import TrackedOrder
from hedgegrid_ops.strategy.orders import SIDES

FLATTEN_WATCHDOG_SECONDS = 15.0
MAX_CLOSE_FAILURES = 3
CLOSE_PATIENCE_BARS = 2
NS_PER_S = 1_000_000_000
EXPECTED_NAUTILUS_SIDE = {
    PositionSide.LONG: NautilusPositionSide.LONG,
    PositionSide.SHORT: NautilusPositionSide.SHORT,
}


class OperatorControl:
    """The ControlTarget half of the strategy, and the flatten loop."""

    _flattening: set[PositionSide]
    _close_failures: dict[PositionSide, int]
    _close_sent_bar: dict[str, int]
    _flatten_since: dict[PositionSide, int]

    # ------------------------------------------------------------------ commands

    def control_start(self, reason: str) -> dict[str, Any]:
        previous = self.trading_state
        if previous is TradingState.HALTED:
            raise CommandConflict(f"trading is halted ({self.state_reason}); restart the service")
        if previous is TradingState.FLATTENING:
            raise CommandConflict(
                "a flatten is in progress; start again once the positions are closed"
            )
        if previous in (TradingState.RUNNING, TradingState.STARTING):
            return _answer("already_running", previous, previous)
        self._set_state(TradingState.RUNNING, reason)
        self._sync_grid(fallback_mid=None)
        self._publish()
        return _answer("started", previous, self.trading_state)

    def control_stop(self, reason: str) -> dict[str, Any]:
        previous = self.trading_state
        if previous in (TradingState.PAUSED, TradingState.FLATTENING, TradingState.HALTED):
            return {**_answer("already_stopped", previous, previous), "cancelled_orders": 0}
        cancelled = self._pause(reason)
        self._publish()
        return {**_answer("stopped", previous, self.trading_state), "cancelled_orders": cancelled}

    def control_set_throttle(self, throttle: float, reason: str) -> dict[str, Any]:
        if not 0.0 <= throttle <= 1.0:
            raise ValueError("throttle must be between 0.0 and 1.0")
        previous = self.throttle
        self.throttle = throttle
        self._jlog.info("throttle_set", previous=previous, throttle=throttle, reason=reason)
        self._publish()
        return {
            "status": "updated" if throttle != previous else "unchanged",
            "new_throttle": throttle,
            "previous_throttle": previous,
        }

    def control_flatten(self, side: str, reason: str) -> dict[str, Any]:
        if self.trading_state is TradingState.HALTED:
            raise CommandConflict(
                f"trading is halted ({self.state_reason}); nothing can be flattened"
            )
        sides = SIDES if side == "both" else (PositionSide(side.upper()),)
        # Legs whose close is already under way: a second flatten does not send another.
        already = [
            s.value for s in sides if s in self._flattening and self.open_position(s) is not None
        ]
        cancelled = self._pause(reason)
        tracked = self._tracked()
        cancelled += self._cancel(
            t for t in tracked if t.tag.side in sides and t.tag.role is not OrderRole.FLATTEN
        )
        closing = []
        for s in sides:
            if s.value in already:
                continue
            if self.open_position(s) is not None and s not in self._flattening:
                closing.append(s.value)
            self._start_flatten(s, reason)
        self.counters.flattens += 1
        self._jlog.warning(
            "flatten",
            side=side,
            cancelled_orders=cancelled,
            closing=closing,
            already_closing=already,
        )
        self._after_order_book_change()
        self._publish()
        return {
            "status": "flattening",
            "side": side,
            "cancelled_orders": cancelled,
            "closing_positions": closing,
            "already_closing": already,
            "trading_state": self.trading_state.value,
        }

    # ------------------------------------------------------------------ flatten loop

    def _start_flatten(self, side: PositionSide, reason: str) -> None:
        """Hand ``side`` to the flatten loop (also used when a leg is found flipped)."""
        if side in self._flattening:
            return
        self._flattening.add(side)
        self._flatten_since[side] = self.clock.timestamp_ns()
        self._close_failures[side] = 0
        if self.trading_state is not TradingState.HALTED:
            self._set_state(TradingState.FLATTENING, reason)
        self._set_flatten_watchdog()

    def _drive_flatten(self, tracked: list[TrackedOrder]) -> None:
        for side in sorted(self._flattening):
            mine = [t for t in tracked if t.tag.side is side]
            self._cancel(t for t in mine if t.tag.role is not OrderRole.FLATTEN)
            position = self.open_position(side)
            closes = [t for t in mine if t.tag.role is OrderRole.FLATTEN]
            self._cancel(t for t in closes if self._close_is_stuck(t))
            closing = bool(closes)
            if position is not None and not closing:
                if self._close_failures.get(side, 0) >= MAX_CLOSE_FAILURES:
                    self._give_up_flatten(side, f"failed {MAX_CLOSE_FAILURES} times")
                    continue
                if self._below_venue_minimum(position):
                    self._give_up_flatten(
                        side,
                        f"left {position.quantity} below the venue's minimum order size; "
                        "close it by hand",
                    )
                    continue
                self._submit_close(side, position)
            elif position is None and not mine:
                self._flattening.discard(side)
                self._jlog.info("leg_flat", side=side.value)
        if self.trading_state is TradingState.FLATTENING and not self._flattening:
            self._set_state(TradingState.PAUSED, f"flattened; {self.state_reason}")

    def _close_is_stuck(self, close: TrackedOrder) -> bool:
        """A close still open after two bars (a partial fill the book never completed).

        Cancelling it lets the loop send a fresh close for whatever is left.
        """
        sent_at_bar = self._close_sent_bar.get(close.order.client_order_id.value)
        bars = self.counters.bars_processed
        return sent_at_bar is not None and bars - sent_at_bar >= CLOSE_PATIENCE_BARS

    def _on_close_failed(self, client_order_id: ClientOrderId, why: str) -> None:
        tag = parse_client_order_id(client_order_id.value)
        if tag is None or tag.role is not OrderRole.FLATTEN:
            return
        self._close_failures[tag.side] = self._close_failures.get(tag.side, 0) + 1
        self._jlog.error("close_failed", side=tag.side.value, detail=why)

    def _give_up_flatten(self, side: PositionSide, why: str) -> None:
        self._flattening.discard(side)
        # Another leg may still be closing: stay FLATTENING (no /start) until it is done.
        state = TradingState.FLATTENING if self._flattening else TradingState.PAUSED
        self._set_state(state, f"flatten of {side.value} {why}")
        self._jlog.error("flatten_failed", side=side.value, detail=why)

    def _below_venue_minimum(self, position: Position) -> bool:
        """A remainder the venue would refuse to trade (a sliver left by partial fills)."""
        price = self.reference_price()
        if self.rules is None or price is None:
            return False
        qty = position.quantity.as_decimal()
        return qty < self.rules.min_qty or qty * price < self.rules.min_notional

    def _set_flatten_watchdog(self) -> None:
        """Report a flatten that has not completed in time (the timer fires on a Rust thread)."""
        name = f"flatten-watchdog-{self._next_seq()}"
        handler = self._flatten_watchdog
        callback = self._loop_bridge.wrap(handler) if self._loop_bridge is not None else handler
        self.clock.set_time_alert_ns(
            name, self.clock.timestamp_ns() + int(FLATTEN_WATCHDOG_SECONDS * NS_PER_S), callback
        )

    def _flatten_watchdog(self, _event: Any) -> None:
        """Flag legs still not flat a watchdog period after *their own* flatten began."""
        deadline = self.clock.timestamp_ns() - int(FLATTEN_WATCHDOG_SECONDS * NS_PER_S) + 1
        overdue = sorted(s.value for s in self._flattening if self._flatten_since[s] <= deadline)
        if overdue and self.trading_state is TradingState.FLATTENING:
            sides = ",".join(overdue)
            self._jlog.error("flatten_incomplete", sides=sides, waited_s=FLATTEN_WATCHDOG_SECONDS)
            self.state_reason = (
                f"flatten of {sides} not confirmed after {FLATTEN_WATCHDOG_SECONDS:g}s"
            )
            self._publish()

    @staticmethod
    def holds_expected_side(side: PositionSide, position: Position) -> bool:
        """A hedge leg must hold its own side; anything else means it flipped."""
        return position.side == EXPECTED_NAUTILUS_SIDE[side]


def _answer(status: str, previous: TradingState, current: TradingState) -> dict[str, Any]:
    return {"status": status, "previous_state": previous.value, "trading_state": current.value}

"""Flattener: closes the legs an operator (or a flipped leg) asked to flatten.

Flatten is a loop rather than a one-shot: a leg being flattened has all its
orders cancelled and a marketable IOC close for what it really holds; after
every event the loop checks the leg again and sends a new close when the
position is still open with no close in flight (a partial fill, or a fill of an
order that was still on its way when the flatten began). A leg is done when it
is flat and none of its orders is left.

The Flattener knows which legs are being flattened and how often their closes
failed; the trading state (FLATTENING, then PAUSED) is the strategy's.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from nautilus_trader.model.enums import PositionSide as NautilusPositionSide
from nautilus_trader.model.position import Position

from hedgegrid_ops.grid.order_ids import parse_client_order_id
from hedgegrid_ops.grid.types import InstrumentRules, OrderRole, PositionSide
from hedgegrid_ops.strategy.orders import OrderDesk
from hedgegrid_ops.strategy.tracked import TrackedOrder

MAX_CLOSE_FAILURES = 3
CLOSE_PATIENCE_BARS = 2


class Flattener:
    """The legs under flatten and the loop that closes them."""

    def __init__(self, desk: OrderDesk, trading_log: Any) -> None:
        self._desk = desk
        self._log = trading_log
        self._since_ns: dict[PositionSide, int] = {}  # legs being flattened, since when
        self._failures: dict[PositionSide, int] = {}

    # ------------------------------------------------------------------ which legs

    @property
    def legs(self) -> frozenset[PositionSide]:
        return frozenset(self._since_ns)

    def begin(self, side: PositionSide, now_ns: int) -> bool:
        """Hand ``side`` to the loop; False when it is already being flattened."""
        if side in self._since_ns:
            return False
        self._since_ns[side] = now_ns
        self._failures[side] = 0
        return True

    def overdue(self, deadline_ns: int) -> list[PositionSide]:
        """Legs whose own flatten began at or before ``deadline_ns`` and are not done."""
        return sorted(s for s, since in self._since_ns.items() if since <= deadline_ns)

    def on_order_failed(self, client_order_id: str, why: str) -> None:
        """Count a close the venue (or the risk engine) refused."""
        tag = parse_client_order_id(client_order_id)
        if tag is None or tag.role is not OrderRole.FLATTEN:
            return
        self._failures[tag.side] = self._failures.get(tag.side, 0) + 1
        self._log.error("close_failed", side=tag.side.value, detail=why)

    # ------------------------------------------------------------------ the loop

    def drive(
        self,
        tracked: list[TrackedOrder],
        positions: Mapping[PositionSide, Position | None],
        *,
        bar: int,
        reference: Decimal | None,
        rules: InstrumentRules,
    ) -> list[tuple[PositionSide, str]]:
        """One pass over the legs under flatten; returns the legs given up on, and why."""
        gave_up: list[tuple[PositionSide, str]] = []
        for side in sorted(self._since_ns):
            mine = [t for t in tracked if t.tag.side is side]
            self._desk.cancel(t for t in mine if t.tag.role is not OrderRole.FLATTEN)
            position = positions[side]
            closes = [t for t in mine if t.tag.role is OrderRole.FLATTEN]
            self._desk.cancel(t for t in closes if self._close_is_stuck(t, bar))
            if position is not None and not closes:
                why = self._why_not_close(side, position, reference, rules)
                if why is not None:
                    self._give_up(side, why)
                    gave_up.append((side, why))
                    continue
                self._desk.submit_close(
                    side,
                    position.quantity.as_decimal(),
                    buying=position.side != NautilusPositionSide.LONG,
                    reference=reference or Decimal(str(position.avg_px_open)),
                )
            elif position is None and not mine:
                del self._since_ns[side]
                self._log.info("leg_flat", side=side.value)
        return gave_up

    def _why_not_close(
        self,
        side: PositionSide,
        position: Position,
        reference: Decimal | None,
        rules: InstrumentRules,
    ) -> str | None:
        if self._failures.get(side, 0) >= MAX_CLOSE_FAILURES:
            return f"failed {MAX_CLOSE_FAILURES} times"
        qty = position.quantity.as_decimal()
        if reference is not None and (qty < rules.min_qty or qty * reference < rules.min_notional):
            return (
                f"left {position.quantity} below the venue's minimum order size; close it by hand"
            )
        return None

    def _close_is_stuck(self, close: TrackedOrder, bar: int) -> bool:
        """A close still open after two bars (a partial fill the book never completed).

        Cancelling it lets the loop send a fresh close for whatever is left.
        """
        sent_at_bar = self._desk.ledger.close_sent_bar(close.order.client_order_id.value)
        return sent_at_bar is not None and bar - sent_at_bar >= CLOSE_PATIENCE_BARS

    def _give_up(self, side: PositionSide, why: str) -> None:
        del self._since_ns[side]
        self._log.error("flatten_failed", side=side.value, detail=why)

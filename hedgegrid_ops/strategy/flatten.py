"""Flattener: carries out the flatten of the legs an operator (or a flipped leg) asked for.

Flatten is a loop rather than a one-shot: after every event and bar, each leg
under flatten is described to the pure ``grid.flatten.plan_flatten`` (its net
position, its open orders with what they may still fill, cancels in flight,
closes and the bar they were sent on) and its plan is carried out: cancel the
leg's orders, send a marketable IOC close sized so that it can never take the
leg past flat, and stop when the leg is flat with nothing left (or give up,
saying why). A partial fill, or a late fill of an order already on its way, is
simply seen by the next plan.

The Flattener knows which legs are being flattened and how often their closes
failed; the trading state (FLATTENING, then PAUSED) is the strategy's.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from nautilus_trader.model.enums import OrderSide, OrderStatus
from nautilus_trader.model.enums import PositionSide as NautilusPositionSide
from nautilus_trader.model.position import Position

from hedgegrid_ops.grid.flatten import LegOrder, plan_flatten
from hedgegrid_ops.grid.order_ids import parse_client_order_id
from hedgegrid_ops.grid.types import InstrumentRules, OrderRole, PositionSide
from hedgegrid_ops.strategy.ledger import OrderLedger
from hedgegrid_ops.strategy.orders import OrderDesk
from hedgegrid_ops.strategy.tracked import TrackedOrder


class Flattener:
    """The legs under flatten and the loop that closes them."""

    def __init__(self, desk: OrderDesk, trading_log: Any) -> None:
        self._desk = desk
        self._log = trading_log
        self._since_ns: dict[PositionSide, int] = {}  # legs being flattened, since when
        self._failures: dict[PositionSide, int] = {}
        self._failed_bar: dict[PositionSide, int] = {}  # bar of each leg's last refused close
        self._bar = 0  # the bar of the latest drive

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
        self._failed_bar.pop(side, None)
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
        self._failed_bar[tag.side] = self._bar
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
        """Carry out one plan per leg under flatten; returns the legs given up on, and why."""
        gave_up: list[tuple[PositionSide, str]] = []
        self._bar = bar
        for side in sorted(self._since_ns):
            mine = [t for t in tracked if t.tag.side is side]
            position = positions[side]
            plan = plan_flatten(
                _signed_qty(position),
                [self._leg_order(t) for t in mine],
                close_failures=self._failures.get(side, 0),
                bar=bar,
                reference=reference,
                rules=rules,
                failed_bar=self._failed_bar.get(side),
            )
            self._desk.cancel_ids(mine, plan.cancel)
            if plan.close is not None:
                fallback = Decimal(str(position.avg_px_open)) if position is not None else None
                self._desk.submit_close(
                    side,
                    plan.close.qty,
                    buying=plan.close.buy,
                    reference=reference or fallback or Decimal(0),
                )
            if plan.done:
                del self._since_ns[side]
                self._log.info("leg_flat", side=side.value)
            elif plan.give_up is not None:
                del self._since_ns[side]
                self._log.error("flatten_failed", side=side.value, detail=plan.give_up)
                gave_up.append((side, plan.give_up))
        return gave_up

    def _leg_order(self, t: TrackedOrder) -> LegOrder:
        cid = t.order.client_order_id.value
        is_close = t.tag.role is OrderRole.FLATTEN
        return LegOrder(
            client_order_id=cid,
            buy=t.order.side == OrderSide.BUY,
            leaves=fillable(t, self._desk.ledger),
            is_close=is_close,
            pending_cancel=t.pending_cancel,
            sent_bar=self._desk.ledger.close_sent_bar(cid) if is_close else None,
        )


def fillable(t: TrackedOrder, ledger: OrderLedger) -> Decimal:
    """What the venue may still fill of ``t``.

    An exit grown in place (after a partial fill) may already have its new size at
    the venue while Nautilus still shows the old one: until the venue answers, the
    larger of the two counts, or a close could be sized past the leg.
    """
    if t.order.status != OrderStatus.PENDING_UPDATE:
        return t.leaves
    asked = ledger.amended_qty(t.order.client_order_id.value)
    if asked is None:
        return t.leaves
    return max(t.leaves, asked - t.order.filled_qty.as_decimal())


def _signed_qty(position: Position | None) -> Decimal:
    """The leg's net position, + long / - short (its actual side, should it have flipped)."""
    if position is None:
        return Decimal(0)
    qty: Decimal = position.quantity.as_decimal()
    return -qty if position.side == NautilusPositionSide.SHORT else qty

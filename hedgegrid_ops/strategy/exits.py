"""ExitKeeper: each leg's exits always match its position.

After every order and position event the open exit quantity of each side (take
profits, and stop losses when configured) is made equal to that side's
position quantity: exits are trimmed when they exceed it and topped up when
they fall short, priced from the latest entry fill.

Two totals matter. *Protection* counts exits that are not being cancelled: it
must reach the position quantity. *Exposure* also counts exits with a cancel or
an amendment in flight, because the venue may still fill them: it must never
exceed the position, or an exit could flip the leg. So while any exit of a side
is pending cancel or update, nothing new is placed for it; the venue's answer is
the next event, and reconciliation runs again then.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from decimal import Decimal
from typing import Any

from nautilus_trader.model.enums import OrderStatus
from nautilus_trader.model.enums import PositionSide as NautilusPositionSide
from nautilus_trader.model.position import Position

from hedgegrid_ops.config import ExitsSection
from hedgegrid_ops.grid.exits import (
    ExitOrder,
    ExitPlan,
    plan_exits,
    stop_loss_price,
    take_profit_price,
)
from hedgegrid_ops.grid.types import InstrumentRules, OrderRole, PositionSide
from hedgegrid_ops.strategy.orders import SIDES, OrderDesk
from hedgegrid_ops.strategy.tracked import TrackedOrder

EXPECTED_NAUTILUS_SIDE = {
    PositionSide.LONG: NautilusPositionSide.LONG,
    PositionSide.SHORT: NautilusPositionSide.SHORT,
}


def holds_expected_side(side: PositionSide, position: Position) -> bool:
    """A hedge leg must hold its own side; anything else means it flipped."""
    return bool(position.side == EXPECTED_NAUTILUS_SIDE[side])


class ExitKeeper:
    """Keeps take-profit (and stop-loss) coverage equal to each leg's position."""

    def __init__(self, desk: OrderDesk, exits: ExitsSection, trading_log: Any) -> None:
        self._desk = desk
        self._exits = exits
        self._log = trading_log
        self._roles = [OrderRole.TAKE_PROFIT]
        if exits.sl_steps is not None:
            self._roles.append(OrderRole.STOP_LOSS)
        self._last_entry_px: dict[PositionSide, Decimal] = {}
        self._reported_shortfall: dict[tuple[PositionSide, OrderRole], Decimal] = {}

    def note_entry_fill(self, side: PositionSide, price: Decimal) -> None:
        """New exits of ``side`` are priced from its latest entry fill."""
        self._last_entry_px[side] = price

    def reconcile(
        self,
        tracked: list[TrackedOrder],
        positions: Mapping[PositionSide, Position | None],
        *,
        skip: Collection[PositionSide],
        rules: InstrumentRules,
        step_bps: float,
    ) -> list[PositionSide]:
        """Bring each leg's exits to its position; return the legs found flipped.

        Legs in ``skip`` (being flattened) are left alone, and so is a flipped
        leg: its exits would add to the wrong side. The caller flattens those.
        """
        flipped: list[PositionSide] = []
        for side in SIDES:
            if side in skip:
                continue
            position = positions[side]
            if position is not None and not holds_expected_side(side, position):
                flipped.append(side)  # the caller reports it and decides what to do
                continue
            qty = position.quantity.as_decimal() if position is not None else Decimal(0)
            for role in self._roles:
                self._reconcile_role(side, role, position, qty, tracked, rules, step_bps)
        return flipped

    def _reconcile_role(
        self,
        side: PositionSide,
        role: OrderRole,
        position: Position | None,
        position_qty: Decimal,
        tracked: list[TrackedOrder],
        rules: InstrumentRules,
        step_bps: float,
    ) -> None:
        mine = [t for t in tracked if t.tag.side is side and t.tag.role is role]
        price = None
        if position is not None:
            entry = self._last_entry_px.get(side) or Decimal(str(position.avg_px_open))
            price = self._price(side, role, entry, rules.tick_size, step_bps)
        plan = plan_exits(position_qty, [_exit_order(t) for t in mine], price, rules)
        if plan.cancel:
            self._desk.cancel_ids(mine, plan.cancel)
        elif plan.place_qty is not None and price is not None:
            self._desk.submit_exit(side, role, price, plan.place_qty)
        elif plan.enlarge is not None:
            # Too small on its own (a partial fill): grow the newest exit in place, which
            # the venue applies atomically, instead of cancel-and-replace.
            cid, new_qty = plan.enlarge
            newest = next(t.order for t in mine if t.order.client_order_id.value == cid)
            self._log.info(
                "exit_enlarged",
                client_order_id=cid,
                qty=float(new_qty),
                shortfall=float(new_qty - newest.quantity.as_decimal()),
                position_qty=float(position_qty),
            )
            self._desk.enlarge(newest, new_qty)
        self._note_coverage(side, role, plan)

    def _note_coverage(self, side: PositionSide, role: OrderRole, plan: ExitPlan) -> None:
        """Log a shortfall that cannot be covered, once per new value."""
        key = (side, role)
        if plan.covered:
            self._reported_shortfall.pop(key, None)
        elif plan.uncovered > 0 and self._reported_shortfall.get(key) != plan.uncovered:
            self._reported_shortfall[key] = plan.uncovered
            self._log.warning(
                "exit_coverage_short",
                side=side.value,
                role=role.value,
                shortfall=float(plan.uncovered),
                detail="below the venue minimum; covered once more quantity fills",
            )

    def _price(
        self, side: PositionSide, role: OrderRole, entry: Decimal, tick: Decimal, step_bps: float
    ) -> Decimal:
        if role is OrderRole.TAKE_PROFIT:
            return take_profit_price(side, entry, step_bps, self._exits.tp_steps, tick)
        assert self._exits.sl_steps is not None  # only reconciled when configured
        return stop_loss_price(side, entry, step_bps, self._exits.sl_steps, tick)


def _exit_order(t: TrackedOrder) -> ExitOrder:
    return ExitOrder(
        client_order_id=t.order.client_order_id.value,
        quantity=t.order.quantity.as_decimal(),
        leaves=t.leaves,
        pending_cancel=t.pending_cancel,
        busy=t.pending_cancel or t.order.status == OrderStatus.PENDING_UPDATE,
    )

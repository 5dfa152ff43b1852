"""Exit coverage of HedgeGridV1: each leg's exits always match its position.

A mixin of ``HedgeGridV1``. After every order and position event the open exit
quantity of each side (take profits, and stop losses when configured) is made
equal to that side's position quantity: exits are trimmed when they exceed it
and topped up when they fall short, priced from the latest entry fill.

Two totals matter. *Protection* counts exits that are not being cancelled: it
must reach the position quantity. *Exposure* also counts exits with a cancel or
an amendment in flight, because the venue may still fill them: it must never
exceed the position, or an exit could flip the leg. So while any exit of a side
is pending cancel or update, nothing new is placed for it; the venue's answer is
the next event, and reconciliation runs again then.
"""

from __future__ import annotations

from decimal import Decimal

from nautilus_trader.model.enums import OrderStatus
from nautilus_trader.model.objects import Quantity
from nautilus_trader.model.position import Position

from hedgegrid_ops.grid.exits import (
    exit_shortfall,
    exits_to_trim,
    stop_loss_price,
    take_profit_price,
)
from hedgegrid_ops.grid.quantize import is_placeable
from hedgegrid_ops.grid.types import OrderRole, PositionSide
from hedgegrid_ops.snapshot import TradingState
from hedgegrid_ops.strategy.book import TrackedOrder, exits_of
from hedgegrid_ops.strategy.orders import SIDES

MAX_RECONCILE_ROUNDS = 10


class ExitKeeper:
    """Keeps take-profit (and stop-loss) coverage equal to each leg's position."""

    _reconciling: bool
    _reconcile_again: bool
    _reported_shortfall: dict[tuple[PositionSide, OrderRole], Decimal]

    def _after_order_book_change(self) -> None:
        """Run the flatten loop and exit reconciliation until the book is stable.

        Submitting or cancelling can deliver events synchronously (always in a
        backtest), which call back in here; a nested call only marks the book
        dirty and the outer call goes round again with fresh state.
        """
        if self.rules is None or self.trading_state is TradingState.HALTED:
            return
        if self._reconciling:
            self._reconcile_again = True
            return
        self._reconciling = True
        try:
            for _ in range(MAX_RECONCILE_ROUNDS):
                self._reconcile_again = False
                tracked = self._tracked()
                self._drive_flatten(tracked)
                self._reconcile_exits(tracked)
                if not self._reconcile_again:
                    break
        finally:
            self._reconciling = False

    def _reconcile_exits(self, tracked: list[TrackedOrder]) -> None:
        roles = [OrderRole.TAKE_PROFIT]
        if self.settings.exits.sl_steps is not None:
            roles.append(OrderRole.STOP_LOSS)
        for side in SIDES:
            if side in self._flattening:
                continue  # the flatten loop owns this leg until it is flat
            position = self.open_position(side)
            if position is not None and not self.holds_expected_side(side, position):
                self._start_flatten(
                    side, f"{side.value} leg holds a {position.side_string()} position"
                )
                self._jlog.error("leg_flipped", side=side.value, position=str(position))
                self._reconcile_again = True
                continue
            position_qty = position.quantity.as_decimal() if position is not None else Decimal(0)
            for role in roles:
                self._reconcile_exit_role(side, role, position, position_qty, tracked)

    def _reconcile_exit_role(
        self,
        side: PositionSide,
        role: OrderRole,
        position: Position | None,
        position_qty: Decimal,
        tracked: list[TrackedOrder],
    ) -> None:
        mine = [t for t in tracked if t.tag.side is side and t.tag.role is role]
        exits = exits_of(mine, side, role)
        trim = set(
            exits_to_trim(position_qty, [(t.order.client_order_id.value, t.leaves) for t in exits])
        )
        if trim:
            self._cancel(t for t in exits if t.order.client_order_id.value in trim)
            return
        if any(t.pending_cancel or t.order.status == OrderStatus.PENDING_UPDATE for t in mine):
            return
        shortfall = exit_shortfall(position_qty, sum((t.leaves for t in exits), Decimal(0)))
        if shortfall <= 0 or position is None:
            self._reported_shortfall.pop((side, role), None)
            return
        entry = self._last_entry_px.get(side) or Decimal(str(position.avg_px_open))
        price = self._exit_price(side, role, entry)
        if is_placeable(price, shortfall, self.rules):
            self._submit_exit(side, role, price, shortfall)
            return
        if exits:
            # Too small on its own (a partial fill): grow the newest exit in place, which
            # the venue applies atomically, instead of cancel-and-replace.
            newest = exits[-1].order
            new_qty = newest.quantity.as_decimal() + shortfall
            self._jlog.info(
                "exit_enlarged",
                client_order_id=newest.client_order_id.value,
                qty=float(new_qty),
                shortfall=float(shortfall),
                position_qty=float(position_qty),
            )
            self.modify_order(newest, quantity=Quantity(new_qty, newest.quantity.precision))
            return
        if self._reported_shortfall.get((side, role)) != shortfall:  # once per new value
            self._reported_shortfall[(side, role)] = shortfall
            self._jlog.warning(
                "exit_coverage_short",
                side=side.value,
                role=role.value,
                shortfall=float(shortfall),
                detail="below the venue minimum; covered once more quantity fills",
            )

    def _exit_price(self, side: PositionSide, role: OrderRole, entry: Decimal) -> Decimal:
        step = self.desired_params().step_bps
        tick = self.rules.tick_size
        if role is OrderRole.TAKE_PROFIT:
            return take_profit_price(side, entry, step, self.settings.exits.tp_steps, tick)
        return stop_loss_price(side, entry, step, self.settings.exits.sl_steps, tick)

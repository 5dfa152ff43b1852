"""A hedge leg found holding the other side's position, on a real BacktestEngine.

The leg is flipped from outside (an order the strategy does not own, bound to the
leg's position id), as a late or doubled fill would. In paper mode the simulated venue
really holds the flipped leg, so the strategy closes it. At a venue that keeps hedge
legs apart (Binance hedge mode) a flipped leg can only be a wrong view of our own, so
the strategy halts instead of trading on it. Either way the run goes on: a flipped leg
once ended the live program with exit 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.objects import Quantity

from hedgegrid_ops.backtest import NS_PER_MINUTE, Scheduled, run_backtest
from hedgegrid_ops.commands import CommandConflict
from hedgegrid_ops.config import load_strategy_config, load_venue_config
from hedgegrid_ops.grid.order_ids import parse_client_order_id
from hedgegrid_ops.grid.types import OrderRole, PositionSide
from hedgegrid_ops.strategy import HedgeGridV1
from hedgegrid_ops.strategy.config import VenueBehaviour
from hedgegrid_ops.venues.sim.backtest_data import BACKTEST_START_NS
from tests.support.program import STRATEGY_YAML, VENUE_YAML

FLIP_MINUTE = 65.5  # both legs of the seeded market hold a position by then


@dataclass
class Flip:
    """Push one open leg through zero with an order the strategy does not own."""

    side: PositionSide | None = None
    seen: list[dict[str, Any]] = field(default_factory=list)

    def flip(self, strategy: HedgeGridV1) -> None:
        for side in (PositionSide.LONG, PositionSide.SHORT):
            position = strategy.open_position(side)
            if position is None:
                continue
            qty = position.quantity.as_decimal() + Decimal("0.002")
            order = strategy.order_factory.market(
                instrument_id=strategy.instrument_id,
                order_side=OrderSide.SELL if side is PositionSide.LONG else OrderSide.BUY,
                quantity=Quantity(qty, position.quantity.precision),
            )
            strategy.submit_order(order, position_id=strategy.orders.position_ids[side])
            self.side = side
            return

    def probe(self, strategy: HedgeGridV1) -> None:
        assert self.side is not None
        position = strategy.open_position(self.side)
        seen = {
            "state": strategy.trading_state.value,
            "reason": strategy.state_reason,
            "leg": position.side.name if position is not None else "FLAT",
        }
        try:
            strategy.control_start("scheduled in the backtest")
            seen["start"] = "started"
        except CommandConflict as exc:
            seen["start"] = f"refused: {exc}"
        self.seen.append(seen)


def _run(behaviour: VenueBehaviour | None) -> tuple[Flip, list[Any]]:
    flip = Flip()
    run = run_backtest(
        load_strategy_config(STRATEGY_YAML),
        load_venue_config(VENUE_YAML),
        minutes=int(FLIP_MINUTE) + 5,
        schedule=[Scheduled(FLIP_MINUTE, flip.flip), Scheduled(FLIP_MINUTE + 3, flip.probe)],
        venue_behaviour=behaviour,
    )
    try:
        after_flip = BACKTEST_START_NS + int(FLIP_MINUTE * NS_PER_MINUTE)
        sent_after = [
            (tag.side, tag.role)
            for o in run.engine.cache.orders()
            if o.ts_init >= after_flip
            and (tag := parse_client_order_id(o.client_order_id.value)) is not None
        ]
    finally:
        run.engine.dispose()
    return flip, sent_after


def test_paper_mode_closes_the_flipped_leg_and_carries_on() -> None:
    flip, sent = _run(None)
    assert flip.side is not None, "no open leg to flip at the chosen minute"
    (after,) = flip.seen
    assert after["leg"] == "FLAT", after  # the simulated venue held it, so it was closed
    assert (flip.side, OrderRole.FLATTEN) in sent
    assert after["reason"].startswith("flattened;") and "leg holds a" in after["reason"]
    assert after["state"] == "paused" and after["start"] == "started", after


def test_a_venue_that_keeps_legs_apart_halts_instead_of_trading_on_a_wrong_view() -> None:
    flip, sent = _run(VenueBehaviour(legs_cannot_flip=True))
    assert flip.side is not None, "no open leg to flip at the chosen minute"
    (after,) = flip.seen
    assert after["state"] == "halted", after
    assert after["reason"].startswith("positions out of sync with the venue"), after
    assert f"the {flip.side.value} leg shows a" in after["reason"]
    # Nothing was sent to "close" the leg back (at a real venue that opens a position),
    # and no grid order either: the exits of the other leg are all that may still move.
    assert not [s for s in sent if s[1] in (OrderRole.FLATTEN, OrderRole.GRID)], sent
    assert after["leg"] != "FLAT"
    assert after["start"].startswith("refused:") and "restart the service" in after["start"]

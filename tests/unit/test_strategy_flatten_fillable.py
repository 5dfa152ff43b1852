"""What the flatten counts as still fillable for a working exit, on real Nautilus orders.

An exit grown in place after a partial fill may already have its new size at the
venue while Nautilus still shows the old one. Counting the old size would let a
close be sized past the leg, and the venue would refuse it (-2022).
"""

from __future__ import annotations

from decimal import Decimal

from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.identifiers import ClientOrderId
from nautilus_trader.model.objects import Price, Quantity
from nautilus_trader.model.orders import Order
from nautilus_trader.test_kit.stubs.events import TestEventStubs
from nautilus_trader.test_kit.stubs.execution import TestExecStubs

from hedgegrid_ops.grid.order_ids import format_client_order_id, parse_client_order_id
from hedgegrid_ops.grid.types import OrderRole, PositionSide
from hedgegrid_ops.strategy.flatten import fillable
from hedgegrid_ops.strategy.ledger import OrderLedger
from hedgegrid_ops.strategy.tracked import track
from hedgegrid_ops.venues.sim.instrument import make_btcusdt_perp

INSTRUMENT = make_btcusdt_perp()
CID = format_client_order_id(PositionSide.LONG, OrderRole.TAKE_PROFIT, 0, 1)


def _take_profit(qty: str, filled: str | None = None) -> Order:
    """An accepted take profit of the LONG leg, partly filled when ``filled`` is given."""
    order = TestExecStubs.make_accepted_order(
        instrument=INSTRUMENT,
        order_side=OrderSide.SELL,
        price=Price.from_str("60000.0"),
        quantity=Quantity.from_str(qty),
        client_order_id=ClientOrderId(CID),
    )
    if filled is not None:
        order.apply(
            TestEventStubs.order_filled(
                order, INSTRUMENT, last_qty=Quantity.from_str(filled), last_px=order.price
            )
        )
    return order


def _fillable(order: Order, ledger: OrderLedger) -> Decimal:
    ledger.add(CID)
    (tracked,) = track([order], ledger)
    assert parse_client_order_id(CID) == tracked.tag
    return fillable(tracked, ledger)


def test_a_working_exit_can_fill_what_it_leaves() -> None:
    order = _take_profit("0.010", filled="0.004")
    assert _fillable(order, OrderLedger()) == Decimal("0.006")


def test_an_exit_being_grown_counts_its_new_size_until_the_venue_answers() -> None:
    order = _take_profit("0.010", filled="0.004")
    ledger = OrderLedger()
    ledger.amend_sent(CID, Decimal("0.014"))
    order.apply(TestEventStubs.order_pending_update(order))
    # Nautilus still says 0.010 (0.006 left); the venue may already fill 0.014 (0.010 left).
    assert order.quantity == Quantity.from_str("0.010")
    assert _fillable(order, ledger) == Decimal("0.010")


def test_an_answered_amendment_no_longer_counts() -> None:
    order = _take_profit("0.010", filled="0.004")
    ledger = OrderLedger()
    ledger.amend_sent(CID, Decimal("0.014"))
    # Not pending any more (the venue refused it, or it was applied and the order
    # now shows its own size): the order's own leaves are the truth again.
    assert _fillable(order, ledger) == Decimal("0.006")

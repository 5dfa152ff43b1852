"""Nautilus 1.231's cache keeps purged order ids in its position index; the sweep drops them.

Real Nautilus objects (its Cache, orders from its OrderFactory, its own events), no
stand-ins: the first assertion shows the bug is there, so the test fails the day a
Nautilus upgrade changes the index (and the workaround can go).
"""

from __future__ import annotations

from nautilus_trader.cache.cache import Cache
from nautilus_trader.common.component import TestClock
from nautilus_trader.common.factories import OrderFactory
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.identifiers import PositionId, StrategyId, TraderId
from nautilus_trader.model.objects import Price, Quantity
from nautilus_trader.model.orders import Order
from nautilus_trader.test_kit.providers import TestInstrumentProvider
from nautilus_trader.test_kit.stubs.events import TestEventStubs

from hedgegrid_ops.position_index import PurgedIdSweeper, find_position_orders_index

INSTRUMENT = TestInstrumentProvider.btcusdt_perp_binance()
LONG = PositionId(f"{INSTRUMENT.id}-LONG")


def _working_order(cache: Cache, factory: OrderFactory, price: str) -> Order:
    """A grid buy submitted on the LONG leg (as the strategy does) and accepted."""
    order = factory.limit(
        INSTRUMENT.id, OrderSide.BUY, Quantity.from_str("0.002"), Price.from_str(price)
    )
    cache.add_order(order, position_id=LONG)
    order.apply(TestEventStubs.order_submitted(order))
    order.apply(TestEventStubs.order_accepted(order))
    cache.update_order(order)
    return order


def test_cancelled_orders_purged_by_nautilus_are_dropped_from_the_position_index() -> None:
    cache = Cache()
    factory = OrderFactory(TraderId("HEDGEGRID-001"), StrategyId("HedgeGridV1-001"), TestClock())
    cancelled = _working_order(cache, factory, "60000.0")
    still_open = _working_order(cache, factory, "59900.0")
    cancelled.apply(TestEventStubs.order_canceled(cancelled))
    cache.update_order(cancelled)

    cache.purge_order(cancelled.client_order_id)

    index = find_position_orders_index(cache)
    assert index is not None
    # Nautilus's purge left the cancelled order's id behind (it never filled, so the
    # order itself never learned its position id): the bug being worked around.
    assert not cache.order_exists(cancelled.client_order_id)
    assert index[LONG] == {cancelled.client_order_id, still_open.client_order_id}

    sweeper = PurgedIdSweeper()
    assert sweeper.sweep(cache) == 1
    assert index[LONG] == {still_open.client_order_id}
    # The open order is still the leg's, for Nautilus's own queries.
    assert cache.orders_for_position(LONG) == [still_open]
    assert cache.position_id(still_open.client_order_id) == LONG
    assert sweeper.sweep(cache) == 0


def test_nothing_is_swept_before_anything_is_indexed() -> None:
    assert find_position_orders_index(Cache()) is None
    assert PurgedIdSweeper().sweep(Cache()) == 0

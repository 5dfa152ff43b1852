"""The local exchange's matching engine and account, driven directly (no sockets).

Every expectation is computed from Binance's rules in the test (fill price, fee,
average entry, realized PnL), not read back from the engine.
"""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from hedgegrid_ops.venues.binance_local.engine import AccountConfig, Engine
from hedgegrid_ops.venues.binance_local.errors import BinanceError
from hedgegrid_ops.venues.binance_local.market import Quote, TradePrint
from hedgegrid_ops.venues.binance_local.spec import BTCUSDT
from hedgegrid_ops.venues.binance_local.state import snapshot

NOW = 1_800_000_000_000
MAKER, TAKER = D("0.0002"), D("0.0005")


def make_engine(balance: str = "10000", dual: bool = True) -> Engine:
    eng = Engine(
        {"BTCUSDT": BTCUSDT},
        AccountConfig(
            starting_balance=D(balance), maker_fee=MAKER, taker_fee=TAKER, dual_side=dual
        ),
    )
    set_quote(eng, "60000.0", "60000.1")
    return eng


def set_quote(eng: Engine, bid: str, ask: str, size: str = "2.000") -> None:
    mark = (D(bid) + D(ask)) / 2
    eng.on_quote("BTCUSDT", Quote(D(bid), D(ask), D(size), D(size)), mark.quantize(D("0.1")))


def trade(eng: Engine, price: str, size: str, seller_aggressor: bool) -> None:
    eng.on_trade("BTCUSDT", TradePrint(0, 1, D(price), D(size), seller_aggressor), NOW + 1)


def order(eng: Engine, **params: str):
    base = {"symbol": "BTCUSDT", "positionSide": "LONG"}
    return eng.place(base | params, NOW)


def limit(eng: Engine, side: str, qty: str, price: str, tif: str = "GTC", ps: str = "LONG"):
    return order(
        eng, side=side, type="LIMIT", quantity=qty, price=price, timeInForce=tif, positionSide=ps
    )


def market(eng: Engine, side: str, qty: str, ps: str = "LONG"):
    return order(eng, side=side, type="MARKET", quantity=qty, positionSide=ps)


def kinds(events: list[dict]) -> list[str]:
    return [e["o"]["x"] if e["e"] == "ORDER_TRADE_UPDATE" else e["e"] for e in events]


def rejected(eng: Engine, code: int, fn, *args, **kw) -> None:
    eng.drain()
    before = snapshot(eng)
    with pytest.raises(BinanceError) as info:
        fn(eng, *args, **kw)
    assert info.value.code == code, info.value
    assert snapshot(eng) == before and eng.drain() == []


# -- resting orders and maker fills ----------------------------------------------------------


def test_resting_buy_fills_as_maker_at_its_price_when_a_print_goes_through() -> None:
    eng = make_engine()
    o = limit(eng, "BUY", "0.010", "59990.0", tif="GTX")
    assert kinds(eng.drain()) == ["NEW"]
    trade(eng, "59995.0", "1.000", seller_aggressor=True)  # above our price: no fill
    assert eng.drain() == [] and o.status == "NEW"
    trade(eng, "59989.9", "1.000", seller_aggressor=True)
    events = eng.drain()
    assert kinds(events) == ["ACCOUNT_UPDATE", "TRADE"]
    fill = events[1]["o"]
    assert (fill["X"], fill["L"], fill["l"], fill["m"]) == ("FILLED", "59990.00", "0.010", True)
    fee = D("59990.0") * D("0.010") * MAKER
    assert D(fill["n"]) == fee and fill["N"] == "USDT"
    assert eng.wallet == D("10000") - fee
    assert events[0]["a"]["P"][0]["pa"] == "0.010" and events[0]["a"]["m"] == "ORDER"


def test_a_print_at_the_price_fills_only_when_it_comes_from_the_other_side() -> None:
    eng = make_engine()
    buy = limit(eng, "BUY", "0.010", "59990.0")
    trade(eng, "59990.0", "1.000", seller_aggressor=False)  # a buyer lifting: not us
    assert buy.status == "NEW"
    trade(eng, "59990.0", "1.000", seller_aggressor=True)  # a seller hitting our level
    assert buy.status == "FILLED"


def test_a_print_smaller_than_the_order_fills_it_partially_in_price_time_priority() -> None:
    eng = make_engine()
    first = limit(eng, "BUY", "0.050", "59990.0")
    second = limit(eng, "BUY", "0.050", "59990.0")
    better = limit(eng, "BUY", "0.010", "59995.0")
    eng.drain()
    trade(eng, "59980.0", "0.030", seller_aggressor=True)
    assert better.executed == D("0.010") and better.status == "FILLED"
    assert first.executed == D("0.020") and first.status == "PARTIALLY_FILLED"
    assert second.executed == 0
    statuses = [e["o"]["X"] for e in eng.drain() if e["e"] == "ORDER_TRADE_UPDATE"]
    assert statuses == ["FILLED", "PARTIALLY_FILLED"]


def test_post_only_that_would_take_is_refused_with_5022_and_nothing_changes() -> None:
    eng = make_engine()
    rejected(eng, -5022, limit, "BUY", "0.010", "60000.1", "GTX")
    rejected(eng, -5022, limit, "SELL", "0.010", "60000.0", "GTX", "SHORT")


# -- taker fills ------------------------------------------------------------------------------


def test_market_order_fills_in_full_at_the_touch_as_taker() -> None:
    eng = make_engine()
    o = market(eng, "BUY", "3.000")  # more than the displayed 2.000: still one fill
    events = eng.drain()
    assert kinds(events) == ["NEW", "ACCOUNT_UPDATE", "TRADE"]
    fill = events[2]["o"]
    assert (fill["L"], fill["l"], fill["m"], fill["X"]) == ("60000.10", "3.000", False, "FILLED")
    assert eng.wallet == D("10000") - D("60000.1") * 3 * TAKER
    assert o.avg_price == D("60000.1")


def test_ioc_takes_the_displayed_size_and_the_remainder_expires() -> None:
    eng = make_engine()
    o = limit(eng, "BUY", "2.500", "60010.0", tif="IOC")
    assert kinds(eng.drain()) == ["NEW", "ACCOUNT_UPDATE", "TRADE", "EXPIRED"]
    assert o.executed == D("2.000") and o.status == "EXPIRED" and not eng.open_orders()


def test_fok_that_cannot_fill_completely_is_refused() -> None:
    eng = make_engine()
    rejected(eng, -5021, limit, "BUY", "2.500", "60010.0", "FOK")
    o = limit(eng, "BUY", "1.500", "60010.0", tif="FOK")
    assert o.status == "FILLED"


def test_marketable_gtc_takes_what_is_shown_and_rests_the_rest() -> None:
    eng = make_engine()
    o = limit(eng, "BUY", "2.500", "60000.5")
    assert o.status == "PARTIALLY_FILLED" and o.executed == D("2.000")
    assert eng.fills[-1].price == D("60000.1") and not eng.fills[-1].maker
    trade(eng, "60000.2", "1.000", seller_aggressor=True)
    assert o.status == "FILLED" and eng.fills[-1].maker and eng.fills[-1].price == D("60000.5")


# -- positions, PnL, margin -------------------------------------------------------------------


def test_hedge_legs_average_entry_and_realized_pnl() -> None:
    eng = make_engine("100000")
    market(eng, "BUY", "1.000")  # long 1 @ 60000.1
    set_quote(eng, "61000.0", "61000.1")
    market(eng, "BUY", "1.000")  # long 2 @ avg 60500.1
    market(eng, "SELL", "0.500", ps="SHORT")  # short 0.5 @ 61000.0
    long = eng.position("BTCUSDT", "LONG")
    assert long.amt == D("2.000") and long.entry == D("60500.1")
    set_quote(eng, "62000.0", "62000.1")
    market(eng, "SELL", "1.500")  # close 1.5 long @ 62000.0
    market(eng, "BUY", "0.500", ps="SHORT")  # close the short @ 62000.1
    realized_long = (D("62000.0") - D("60500.1")) * D("1.5")
    realized_short = (D("61000.0") - D("62000.1")) * D("0.5")
    assert long.amt == D("0.500") and long.entry == D("60500.1")
    assert eng.position("BTCUSDT", "SHORT").amt == 0
    fees = sum(f.commission for f in eng.fills)
    assert fees == sum(f.price * f.qty * TAKER for f in eng.fills)
    assert eng.wallet == D("100000") + realized_long + realized_short - fees
    assert [f.realized for f in eng.fills][-2:] == [realized_long, realized_short]


def test_closing_more_than_the_leg_is_refused_with_2022() -> None:
    eng = make_engine()
    market(eng, "BUY", "0.010")
    eng.drain()
    rejected(eng, -2022, market, "SELL", "0.011")
    rejected(eng, -2022, market, "BUY", "0.001", "SHORT")


def test_close_orders_left_when_the_leg_goes_flat_expire() -> None:
    eng = make_engine()
    market(eng, "BUY", "0.010")
    take_profit = limit(eng, "SELL", "0.010", "61000.0")
    market(eng, "SELL", "0.010")
    assert take_profit.status == "EXPIRED" and not eng.open_orders()


def test_margin_check_refuses_an_opening_order_with_2019() -> None:
    eng = make_engine("1000")  # 20x: at most ~20000 USDT of notional
    rejected(eng, -2019, market, "BUY", "0.400")
    limit(eng, "BUY", "0.300", "59000.0")  # 17700 notional → 885 margin
    rejected(eng, -2019, limit, "SELL", "0.100", "61000.0", "GTC", "SHORT")
    assert eng.available() == D("1000") - D("59000.0") * D("0.300") / 20


def test_funding_long_pays_short_receives_at_the_mark() -> None:
    eng = make_engine("100000")
    market(eng, "BUY", "1.000")
    market(eng, "SELL", "0.400", ps="SHORT")
    eng.drain()
    before = eng.wallet
    paid = eng.settle_funding("BTCUSDT", D("0.0001"), D("60000.0"), NOW, NOW + 5)
    assert paid == -D("60000.0") * D("0.0001") * D("0.6")
    assert eng.wallet == before + paid
    (event,) = eng.drain()
    assert event["e"] == "ACCOUNT_UPDATE" and event["a"]["m"] == "FUNDING_FEE"
    assert D(event["a"]["B"][0]["wb"]) == eng.wallet
    rows = [i.income for i in eng.income if i.income_type == "FUNDING_FEE"]
    assert rows == [-D("6.00000000"), D("2.40000000")]


def test_no_positions_no_funding_event() -> None:
    eng = make_engine()
    assert eng.settle_funding("BTCUSDT", D("0.0001"), D("60000.0"), NOW, NOW) == 0
    assert eng.drain() == [] and eng.wallet == D("10000")


def test_one_way_mode_flips_through_zero() -> None:
    eng = make_engine("100000", dual=False)
    market(eng, "BUY", "0.010", ps="BOTH")
    set_quote(eng, "60100.0", "60100.1")
    market(eng, "SELL", "0.030", ps="BOTH")
    pos = eng.position("BTCUSDT", "BOTH")
    assert pos.amt == D("-0.020") and pos.entry == D("60100.0")
    assert eng.fills[-1].realized == (D("60100.0") - D("60000.1")) * D("0.010")


# -- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"price": "60000.05"}, -4014),
        ({"price": "60000.001"}, -1111),
        ({"quantity": "0.0015"}, -1111),
        ({"quantity": "0"}, -4003),
        ({"quantity": "1001"}, -4005),
        ({"quantity": "0.001"}, -4164),
        ({"price": "100.0"}, -4013),
        ({"price": "9999999"}, -4002),
        ({"price": "abc"}, -1102),
        ({"side": "HOLD"}, -1117),
        ({"type": "ICEBERG"}, -1116),
        ({"type": "STOP_MARKET"}, -4120),
        ({"timeInForce": "DAY"}, -1115),
        ({"positionSide": "BOTH"}, -4061),
        ({"reduceOnly": "true"}, -1106),
        ({"symbol": "ETHUSDT"}, -1121),
        ({"newClientOrderId": "bad id!"}, -4015),
        ({"timeInForce": "GTD", "goodTillDate": str(NOW + 1000)}, -5040),
    ],
)
def test_filters_and_parameters_use_binance_codes(params: dict, code: int) -> None:
    eng = make_engine()
    base = {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "positionSide": "LONG",
        "quantity": "0.010",
        "price": "59000.0",
        "timeInForce": "GTC",
    }
    rejected(eng, code, lambda e: e.place(base | params, NOW))


def test_duplicate_open_client_id_is_refused() -> None:
    eng = make_engine()
    order(
        eng,
        side="BUY",
        type="LIMIT",
        quantity="0.010",
        price="59000.0",
        timeInForce="GTC",
        newClientOrderId="abc",
    )
    rejected(
        eng,
        -4116,
        lambda e: order(
            e,
            side="BUY",
            type="LIMIT",
            quantity="0.010",
            price="59000.0",
            timeInForce="GTC",
            newClientOrderId="abc",
        ),
    )


def test_min_notional_does_not_apply_to_closing_orders() -> None:
    eng = make_engine()
    market(eng, "BUY", "0.002")
    assert market(eng, "SELL", "0.001").status == "FILLED"


# -- cancel / modify / expiry / injected rejections ------------------------------------------


def test_modify_amends_price_and_quantity_and_refuses_no_op_and_taking_post_only() -> None:
    eng = make_engine()
    o = limit(eng, "BUY", "0.010", "59000.0", tif="GTX")
    eng.drain()
    eng.modify(
        {
            "symbol": "BTCUSDT",
            "orderId": str(o.order_id),
            "side": "BUY",
            "quantity": "0.020",
            "price": "59100.0",
        },
        NOW,
    )
    (event,) = eng.drain()
    assert (event["o"]["x"], event["o"]["p"], event["o"]["q"]) == ("AMENDMENT", "59100.00", "0.020")
    same = {
        "symbol": "BTCUSDT",
        "orderId": str(o.order_id),
        "side": "BUY",
        "quantity": "0.020",
        "price": "59100.0",
    }
    rejected(eng, -5027, lambda e: e.modify(same, NOW))
    rejected(eng, -5022, lambda e: e.modify(same | {"price": "60000.1"}, NOW))
    rejected(eng, -2013, lambda e: e.modify(same | {"orderId": "1"}, NOW))


def test_cancel_by_either_id_and_unknown_orders() -> None:
    eng = make_engine()
    a = limit(eng, "BUY", "0.010", "59000.0")
    b = limit(eng, "BUY", "0.010", "59000.0")
    eng.cancel("BTCUSDT", str(a.order_id), None, NOW)
    eng.cancel("BTCUSDT", None, b.client_id, NOW)
    assert (a.status, b.status) == ("CANCELED", "CANCELED")
    assert kinds(eng.drain()) == ["NEW", "NEW", "CANCELED", "CANCELED"]
    rejected(eng, -2011, lambda e: e.cancel("BTCUSDT", str(a.order_id), None, NOW))
    rejected(eng, -2011, lambda e: e.cancel("BTCUSDT", None, "nope", NOW))


def test_gtd_orders_expire_at_their_date() -> None:
    eng = make_engine()
    until = NOW + 700_000
    o = order(
        eng,
        side="BUY",
        type="LIMIT",
        quantity="0.010",
        price="59000.0",
        timeInForce="GTD",
        goodTillDate=str(until),
    )
    eng.expire_due(until - 1)
    assert o.status == "NEW"
    eng.expire_due(until)
    assert o.status == "EXPIRED" and kinds(eng.drain())[-1] == "EXPIRED"


def test_injected_rejection_applies_to_the_next_order_only() -> None:
    eng = make_engine()
    eng.reject_next = BinanceError(-1008, "Server is currently overloaded", 503)
    rejected(eng, -1008, market, "BUY", "0.010")
    assert market(eng, "BUY", "0.010").status == "FILLED"

"""The local exchange in-process, over real HTTP and WebSocket sockets.

REST surface, authentication, bad input, market streams (combined URL, SUBSCRIBE /
UNSUBSCRIBE, malformed messages), the user stream, funding settlement and every
admin fault switch.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from decimal import Decimal as D
from typing import Any

import aiohttp
import orjson
import pytest

from hedgegrid_ops.venues.binance_local.server import ExchangeConfig, LocalExchange
from hedgegrid_ops.venues.sim.process import FUNDING_INTERVAL_NS, MINUTE_NS
from tests.exchange_support import API_KEY, API_SECRET, AsyncBinanceRest

TOKEN = "admin-test-token"


async def start(**overrides: Any) -> LocalExchange:
    cfg = dict(
        speed=60.0,
        ticks_per_minute=30,
        history_minutes=30,
        admin_token=TOKEN,
        api_key=API_KEY,
        api_secret=API_SECRET,
    )
    return await LocalExchange(ExchangeConfig(**(cfg | overrides))).start()


@pytest.fixture
async def ex() -> AsyncIterator[LocalExchange]:
    exchange = await start()
    yield exchange
    await exchange.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
def rest(ex: LocalExchange, session: aiohttp.ClientSession) -> AsyncBinanceRest:
    return AsyncBinanceRest(session, ex.rest_url)


async def admin(
    session: aiohttp.ClientSession,
    ex: LocalExchange,
    path: str,
    body: dict | None = None,
    token: str = TOKEN,
) -> tuple[int, Any]:
    method = "GET" if path == "/admin/status" else "POST"
    async with session.request(
        method, f"{ex.rest_url}{path}", json=body, headers={"X-Admin-Token": token}
    ) as resp:
        return resp.status, await resp.json()


async def recv_json(ws: aiohttp.ClientWebSocketResponse, timeout: float = 5.0) -> Any:
    msg = await ws.receive(timeout=timeout)
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    return orjson.loads(msg.data)


async def next_matching(ws, pred, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        assert left > 0, "no matching message"
        data = await recv_json(ws, left)
        if pred(data):
            return data


async def closed_by_server(ws: aiohttp.ClientWebSocketResponse) -> None:
    """Read until the server's close arrives (data already in flight may come first)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        msg = await ws.receive(timeout=5)
        if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
            return
    raise AssertionError("the server did not close the socket")


async def user_stream(session, ex, rest) -> tuple[str, aiohttp.ClientWebSocketResponse]:
    key = (await rest.ok("POST", "/fapi/v1/listenKey", signed=False))["listenKey"]
    ws = await session.ws_connect(f"{ex.ws_url}/ws?listenKey={key}")
    return key, ws


ORDER = {"symbol": "BTCUSDT", "side": "BUY", "positionSide": "LONG"}


# -- REST surface ------------------------------------------------------------------------------


async def test_public_and_account_endpoints(ex: LocalExchange, rest: AsyncBinanceRest) -> None:
    info = await rest.ok("GET", "/fapi/v1/exchangeInfo", signed=False)
    (sym,) = info["symbols"]
    filters = {f["filterType"]: f for f in sym["filters"]}
    assert filters["PRICE_FILTER"]["tickSize"] == "0.10"
    assert filters["LOT_SIZE"]["stepSize"] == "0.001"
    assert filters["MIN_NOTIONAL"]["notional"] == "100"
    history = ex.market.history()
    start_ms, end_ms = history[5].open_ms, history[9].open_ms
    rows = await rest.ok(
        "GET",
        "/fapi/v1/klines",
        {"symbol": "BTCUSDT", "interval": "1m", "startTime": start_ms, "endTime": end_ms},
        signed=False,
    )
    assert [r[0] for r in rows] == [h.open_ms for h in history[5:10]]
    assert all(len(r) == 12 and r[6] == r[0] + 59_999 for r in rows)
    account = await rest.ok("GET", "/fapi/v2/account", {"recvWindow": 5000})
    assert account["feeTier"] == 0 and account["assets"][0]["walletBalance"] == "10000"
    risk = await rest.ok("GET", "/fapi/v3/positionRisk")
    assert sorted(r["positionSide"] for r in risk) == ["LONG", "SHORT"]
    assert await rest.ok("GET", "/fapi/v1/positionSide/dual") == {"dualSidePosition": True}
    (config,) = await rest.ok("GET", "/fapi/v1/symbolConfig")
    assert config["leverage"] == 20 and config["marginType"] == "CROSSED"
    assert await rest.ok("POST", "/fapi/v1/leverage", {"symbol": "BTCUSDT", "leverage": 10}) == {
        "leverage": 10,
        "maxNotionalValue": "80000000",
        "symbol": "BTCUSDT",
    }
    status, body = await rest.call(
        "POST", "/fapi/v1/marginType", {"symbol": "BTCUSDT", "marginType": "CROSSED"}
    )
    assert (status, body) == (400, {"code": -4046, "msg": "No need to change margin type."})
    assert await rest.ok("GET", "/fapi/v1/openAlgoOrders") == []
    assert await rest.ok("GET", "/fapi/v1/allAlgoOrders", {"symbol": "BTCUSDT"}) == []
    assert (await rest.call("GET", "/fapi/v1/order", {"symbol": "BTCUSDT", "orderId": 1}))[1][
        "code"
    ] == -2013


async def test_orders_over_rest_reach_the_user_stream(ex, rest, session) -> None:
    _key, ws = await user_stream(session, ex, rest)
    quote = ex.engine.symbols["BTCUSDT"].quote
    low = f"{quote.bid * D('0.95'):.1f}"
    placed = await rest.ok(
        "POST",
        "/fapi/v1/order",
        ORDER
        | {
            "type": "LIMIT",
            "timeInForce": "GTX",
            "quantity": "0.010",
            "price": low,
            "newClientOrderId": "rest-1",
        },
    )
    new = await next_matching(ws, lambda m: m.get("e") == "ORDER_TRADE_UPDATE")
    assert (new["o"]["x"], new["o"]["c"], new["o"]["i"]) == ("NEW", "rest-1", placed["orderId"])
    queried = await rest.ok(
        "GET", "/fapi/v1/order", {"symbol": "BTCUSDT", "origClientOrderId": "rest-1"}
    )
    assert queried["status"] == "NEW" and queried["price"] == f"{D(low):.2f}"
    batch = await rest.ok(
        "DELETE",
        "/fapi/v1/batchOrders",
        {"symbol": "BTCUSDT", "origClientOrderIdList": '["rest-1","nope"]'},
    )
    assert batch[0]["status"] == "CANCELED" and batch[1]["code"] == -2011
    await rest.ok("POST", "/fapi/v1/order", ORDER | {"type": "MARKET", "quantity": "0.010"})
    fill = await next_matching(ws, lambda m: m.get("o", {}).get("x") == "TRADE")
    assert fill["o"]["X"] == "FILLED" and fill["o"]["ps"] == "LONG"
    trades = await rest.ok("GET", "/fapi/v1/userTrades", {"symbol": "BTCUSDT"})
    assert [t["id"] for t in trades] == [fill["o"]["t"]]
    assert trades[0]["commission"] == fill["o"]["n"]
    assert await rest.ok("DELETE", "/fapi/v1/listenKey", signed=False) == {}
    await closed_by_server(ws)


# -- bad input ---------------------------------------------------------------------------------


async def test_authentication_errors_and_unknown_paths(ex, rest, session) -> None:
    before = await rest.ok("GET", "/fapi/v2/account")
    order = ORDER | {"type": "MARKET", "quantity": "0.010"}
    assert await rest.call("POST", "/fapi/v1/order", order, secret="wrong") == (
        400,
        {"code": -1022, "msg": "Signature for this request is not valid."},
    )
    stale = int(time.time() * 1000) - 10_000
    assert (await rest.call("POST", "/fapi/v1/order", order, timestamp_ms=stale))[1][
        "code"
    ] == -1021
    assert (await rest.call("POST", "/fapi/v1/order", order, headers={}))[:1] == (401,)
    wrong_key = await rest.call("GET", "/fapi/v2/account", headers={"X-MBX-APIKEY": "x"})
    assert wrong_key == (
        401,
        {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."},
    )
    assert (await rest.call("POST", "/fapi/v1/order", ORDER | {"type": "MARKET"}))[1] == {
        "code": -1102,
        "msg": "Mandatory parameter 'quantity' was not sent, was empty/null, or malformed.",
    }
    status, body = await rest.call("GET", "/fapi/v1/nothing-here", signed=False)
    assert status == 404 and body["code"] == -1099
    status, body = await rest.call("PATCH", "/fapi/v1/order", signed=False)
    assert status == 405 and "code" in body
    async with session.post(f"{ex.rest_url}/fapi/v1/listenKey") as resp:
        assert resp.status == 401 and (await resp.json())["code"] == -2014
    after = await rest.ok("GET", "/fapi/v2/account")
    assert after == before and ex.engine.fills.maxlen and not ex.engine.fills


# -- market streams ----------------------------------------------------------------------------


async def test_combined_streams_subscribe_unsubscribe_and_malformed_messages(
    ex, session, caplog
) -> None:
    caplog.set_level("WARNING", logger="hedgegrid_ops.exchange")
    ws = await session.ws_connect(f"{ex.ws_url}/stream?streams=btcusdt@bookTicker")
    first = await recv_json(ws)
    assert first["stream"] == "btcusdt@bookTicker" and {"b", "B", "a", "A", "u", "s"} <= set(
        first["data"]
    )
    for junk in (
        "not json",
        '{"no":"method"}',
        '{"method":"SUBSCRIBE","params":"x","id":9}',
        '{"method":"EXPLODE","id":3}',
    ):
        await ws.send_str(junk)
    await ws.send_str(
        '{"method":"SUBSCRIBE","params":["btcusdt@aggTrade","btcusdt@kline_1m",'
        '"btcusdt@markPrice@1s"],"id":1}'
    )
    assert await next_matching(ws, lambda m: "id" in m) == {"result": None, "id": 1}
    trade = await next_matching(ws, lambda m: m.get("stream") == "btcusdt@aggTrade")
    assert set(trade["data"]) == {"e", "E", "s", "a", "p", "q", "f", "l", "T", "m"}
    mark = await next_matching(ws, lambda m: m.get("stream") == "btcusdt@markPrice@1s")
    assert D(mark["data"]["r"]) != 0 and mark["data"]["T"] % (8 * 3600 * 1000) == 0
    klines = []
    while len(klines) < 3:
        msg = await next_matching(ws, lambda m: m.get("stream") == "btcusdt@kline_1m")
        klines.append(msg["data"]["k"])
    assert all(k["x"] for k in klines)
    assert [k["t"] for k in klines] == [klines[0]["t"] + 60_000 * i for i in range(3)]
    await ws.send_str('{"method":"UNSUBSCRIBE","params":["btcusdt@aggTrade"],"id":2}')
    await ws.send_str('{"method":"LIST_SUBSCRIPTIONS","id":3}')
    listed = await next_matching(ws, lambda m: m.get("id") == 3)
    assert listed["result"] == ["btcusdt@bookTicker", "btcusdt@kline_1m", "btcusdt@markPrice@1s"]
    ignored = [r.getMessage() for r in caplog.records if "ws_message_ignored" in r.getMessage()]
    assert len(ignored) == 4, ignored  # each malformed message logged, the socket kept
    await ws.close()


# -- funding -----------------------------------------------------------------------------------


async def test_funding_is_settled_on_open_positions_at_the_funding_time(session) -> None:
    funding_ns = (time.time_ns() // FUNDING_INTERVAL_NS - 3) * FUNDING_INTERVAL_NS
    ex = await start(start_ns=funding_ns - 2 * MINUTE_NS, history_minutes=5)
    ex.clock.pause()  # hold the market before the funding time until both legs are open
    try:
        rest = AsyncBinanceRest(session, ex.rest_url)
        _key, ws = await user_stream(session, ex, rest)
        await rest.ok("POST", "/fapi/v1/order", ORDER | {"type": "MARKET", "quantity": "0.100"})
        await rest.ok(
            "POST",
            "/fapi/v1/order",
            ORDER
            | {"type": "MARKET", "quantity": "0.030", "side": "SELL", "positionSide": "SHORT"},
        )
        assert ex.market.now_ns < funding_ns
        await admin(session, ex, "/admin/market/resume")
        event = await next_matching(ws, lambda m: m.get("a", {}).get("m") == "FUNDING_FEE", 15)
        income = await rest.ok("GET", "/fapi/v1/income", {"incomeType": "FUNDING_FEE"})
        (rate_row,) = await rest.ok("GET", "/fapi/v1/fundingRate", signed=False)
        rate, mark = D(rate_row["fundingRate"]), D(rate_row["markPrice"])
        assert rate_row["fundingTime"] == funding_ns // 1_000_000
        assert [D(i["income"]) for i in income] == [
            (-D("0.100") * mark * rate).quantize(D("1e-8")),
            (D("0.030") * mark * rate).quantize(D("1e-8")),
        ]
        trades = await rest.ok("GET", "/fapi/v1/userTrades", {"symbol": "BTCUSDT"})
        fees = sum(D(t["commission"]) for t in trades)
        wallet = D("10000") - fees + sum(D(i["income"]) for i in income)
        assert D(event["a"]["B"][0]["wb"]) == wallet
        account = await rest.ok("GET", "/fapi/v2/account")
        assert D(account["totalWalletBalance"]) == wallet
        await ws.close()
    finally:
        await ex.stop()


# -- fault switches ----------------------------------------------------------------------------


async def test_admin_routes_need_their_own_token(ex, session) -> None:
    assert (await admin(session, ex, "/admin/market/pause", token="nope"))[0] == 401
    async with session.post(
        f"{ex.rest_url}/admin/market/pause", headers={"X-MBX-APIKEY": API_KEY}
    ) as resp:
        assert resp.status == 401
    status, body = await admin(session, ex, "/admin/fail", {"path": "/x", "count": "two"})
    assert status == 400 and "count" in body["error"]
    assert (await admin(session, ex, "/admin/status"))[1]["faults"]["failures"] == []
    assert not ex.clock.paused


async def test_fail_next_requests_of_a_path(ex, rest, session) -> None:
    await admin(
        session,
        ex,
        "/admin/fail",
        {"path": "/fapi/v1/order", "count": 2, "status": 429, "code": -1003, "method": "POST"},
    )
    order = ORDER | {"type": "MARKET", "quantity": "0.010"}
    for _ in range(2):
        status, body = await rest.call("POST", "/fapi/v1/order", order)
        assert status == 429 and body["code"] == -1003
    assert (await rest.call("GET", "/fapi/v1/openOrders"))[0] == 200  # other method untouched
    assert (await rest.ok("POST", "/fapi/v1/order", order))["status"] == "FILLED"
    await admin(session, ex, "/admin/fail", {"path": "/fapi/v2/account", "status": 503})
    assert await rest.call("GET", "/fapi/v2/account") == (
        503,
        {"code": -1001, "msg": "Internal error; unable to process your request. Please try again."},
    )
    assert len(ex.engine.fills) == 1


async def test_delay_responses(ex, rest, session) -> None:
    await admin(session, ex, "/admin/delay", {"seconds": 0.4, "path": "/fapi/v1/time", "count": 1})
    started = time.monotonic()
    await rest.ok("GET", "/fapi/v1/time", signed=False)
    assert time.monotonic() - started >= 0.4  # held at least as long as asked
    assert (await admin(session, ex, "/admin/status"))[1]["faults"]["delays"] == []


async def test_delay_of_one_method_leaves_the_others_alone(ex, rest, session) -> None:
    rule = {"seconds": 0.4, "path": "/fapi/v1/order", "method": "DELETE", "count": 1}
    await admin(session, ex, "/admin/delay", rule)
    resting = ORDER | {"type": "LIMIT", "timeInForce": "GTC", "price": "50000.0"}
    placed = await rest.ok("POST", "/fapi/v1/order", resting | {"quantity": "0.010"})
    delays = (await admin(session, ex, "/admin/status"))[1]["faults"]["delays"]
    assert delays == [
        {"path": "/fapi/v1/order", "method": "DELETE", "seconds": 0.4, "remaining": 1}
    ]
    started = time.monotonic()
    cancel = {"symbol": "BTCUSDT", "orderId": str(placed["orderId"])}
    assert (await rest.ok("DELETE", "/fapi/v1/order", cancel))["status"] == "CANCELED"
    assert time.monotonic() - started >= 0.4  # the cancel was held, the new order was not counted
    assert (await admin(session, ex, "/admin/status"))[1]["faults"]["delays"] == []


async def test_reject_next_order_of_one_time_in_force(ex, rest, session) -> None:
    await admin(session, ex, "/admin/reject-next-order", {"code": -2022, "time_in_force": "IOC"})
    resting = ORDER | {"type": "LIMIT", "timeInForce": "GTC", "price": "50000.0"}
    assert (await rest.ok("POST", "/fapi/v1/order", resting | {"quantity": "0.010"}))["status"] == (
        "NEW"
    )
    ioc = ORDER | {"type": "LIMIT", "timeInForce": "IOC", "price": "50000.0", "quantity": "0.010"}
    assert await rest.call("POST", "/fapi/v1/order", ioc) == (
        400,
        {"code": -2022, "msg": "ReduceOnly Order is rejected."},
    )
    assert (await rest.call("POST", "/fapi/v1/order", ioc))[0] == 200  # refused once only


async def test_reject_next_order(ex, rest, session) -> None:
    await admin(session, ex, "/admin/reject-next-order", {"code": -2019})
    order = ORDER | {"type": "MARKET", "quantity": "0.010"}
    assert await rest.call("POST", "/fapi/v1/order", order) == (
        400,
        {"code": -2019, "msg": "Margin is insufficient."},
    )
    assert (await rest.ok("POST", "/fapi/v1/order", order))["status"] == "FILLED"


async def test_pause_market_freezes_quotes_and_fills(ex, rest, session) -> None:
    ws = await session.ws_connect(f"{ex.ws_url}/stream?streams=btcusdt@bookTicker")
    await recv_json(ws)
    await admin(session, ex, "/admin/market/pause")
    events_before = ex.market_events
    with pytest.raises(asyncio.TimeoutError):
        while True:  # drain what was in flight, then silence
            await ws.receive(timeout=0.6)
    assert ex.market_events == events_before
    await admin(session, ex, "/admin/market/resume")
    assert (await recv_json(ws))["stream"] == "btcusdt@bookTicker"
    await ws.close()


async def test_drop_websockets_and_expire_listen_key(ex, rest, session) -> None:
    market = await session.ws_connect(f"{ex.ws_url}/stream?streams=btcusdt@aggTrade")
    key, user = await user_stream(session, ex, rest)
    _status, body = await admin(session, ex, "/admin/ws/drop")
    assert body == {"dropped": 2}
    for ws in (market, user):
        await closed_by_server(ws)
    # Reconnecting works, with the same key.
    user = await session.ws_connect(f"{ex.ws_url}/ws?listenKey={key}")
    assert (await admin(session, ex, "/admin/listen-key/expire"))[1] == {"expired": True}
    expired = await recv_json(user)
    assert expired["e"] == "listenKeyExpired" and expired["listenKey"] == key
    assert (await rest.call("PUT", "/fapi/v1/listenKey", signed=False))[1]["code"] == -1125
    with pytest.raises(aiohttp.WSServerHandshakeError):
        await session.ws_connect(f"{ex.ws_url}/ws?listenKey={key}")
    new_key = (await rest.ok("POST", "/fapi/v1/listenKey", signed=False))["listenKey"]
    assert new_key != key
    await user.close()


async def test_failing_the_stream_handshake(ex, session) -> None:
    await admin(session, ex, "/admin/fail", {"path": "/stream", "status": 503})
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await session.ws_connect(f"{ex.ws_url}/stream?streams=btcusdt@aggTrade")
    assert info.value.status == 503
    ws = await session.ws_connect(f"{ex.ws_url}/stream?streams=btcusdt@aggTrade")
    assert (await recv_json(ws))["stream"] == "btcusdt@aggTrade"
    await ws.close()

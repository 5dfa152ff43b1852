"""The Binance USDT-M REST surface: one function per endpoint, thin over the engine.

Each handler gets the decoded parameters and the exchange, and returns the JSON
body (or raises :class:`BinanceError`). Authentication, fault injection and error
formatting happen once in the dispatcher (:mod:`.server`), driven by the
:data:`ROUTES` table.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from hedgegrid_ops.venues.binance_local.auth import Security
from hedgegrid_ops.venues.binance_local.errors import BinanceError, error, invalid, missing
from hedgegrid_ops.venues.binance_local.market import INTERVAL_MINUTES, klines
from hedgegrid_ops.venues.binance_local.spec import exchange_info, parse_int
from hedgegrid_ops.venues.binance_local.wire import (
    income_json,
    kline_array,
    num,
    order_json,
    trade_json,
    unrealized,
)

if TYPE_CHECKING:
    from hedgegrid_ops.venues.binance_local.server import LocalExchange

Params = dict[str, str]
Handler = Callable[["LocalExchange", Params], Any]


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    security: Security
    handler: Handler
    mutates: bool = False  # account state changed: save state, flush user events


ROUTES: list[Route] = []


def route(method: str, path: str, security: Security, mutates: bool = False):
    def register(fn: Handler) -> Handler:
        ROUTES.append(Route(method, path, security, fn, mutates))
        return fn

    return register


def _limit(params: Params, default: int, maximum: int) -> int:
    text = params.get("limit")
    if not text:
        return default
    value = parse_int(text, "limit")
    if not 1 <= value <= maximum:
        raise invalid("limit")
    return value


def _opt_int(params: Params, name: str) -> int | None:
    text = params.get(name)
    return parse_int(text, name) if text else None


def _time_range(params: Params) -> tuple[int | None, int | None]:
    start, end = _opt_int(params, "startTime"), _opt_int(params, "endTime")
    if start is not None and end is not None and start > end:
        raise BinanceError(-1023, "Start time is greater than end time.")
    return start, end


# -- general / market data ---------------------------------------------------------------------


@route("GET", "/fapi/v1/ping", Security.NONE)
def ping(ex: LocalExchange, params: Params) -> Any:
    return {}


@route("GET", "/fapi/v1/time", Security.NONE)
def server_time(ex: LocalExchange, params: Params) -> Any:
    return {"serverTime": ex.now_ms()}


@route("GET", "/fapi/v1/exchangeInfo", Security.NONE)
def get_exchange_info(ex: LocalExchange, params: Params) -> Any:
    return exchange_info(list(ex.engine.specs.values()), ex.now_ms())


@route("GET", "/fapi/v1/klines", Security.NONE)
def get_klines(ex: LocalExchange, params: Params) -> Any:
    st = ex.engine.symbol(params.get("symbol"))
    interval = params.get("interval")
    if not interval:
        raise missing("interval")
    if interval not in INTERVAL_MINUTES:
        raise error(-1120)
    start, end = _time_range(params)
    rows = klines(ex.market.history(), interval, start, end, _limit(params, 500, 1500))
    return [kline_array(st.spec, r) for r in rows]


@route("GET", "/fapi/v1/depth", Security.NONE)
def get_depth(ex: LocalExchange, params: Params) -> Any:
    st = ex.engine.symbol(params.get("symbol"))
    _limit(params, 500, 1000)
    q, spec = st.quote, st.spec
    now = ex.now_ms()
    bids = [[spec.fmt_price(q.bid), spec.fmt_qty(q.bid_size)]] if q else []
    asks = [[spec.fmt_price(q.ask), spec.fmt_qty(q.ask_size)]] if q else []
    return {"lastUpdateId": ex.market_update_id(), "E": now, "T": now, "bids": bids, "asks": asks}


@route("GET", "/fapi/v1/ticker/bookTicker", Security.NONE)
def get_book_ticker(ex: LocalExchange, params: Params) -> Any:
    st = ex.engine.symbol(params.get("symbol") or next(iter(ex.engine.symbols)))
    q, spec = st.quote, st.spec
    if q is None:
        raise error(-1001)
    return {
        "symbol": spec.symbol,
        "bidPrice": spec.fmt_price(q.bid),
        "bidQty": spec.fmt_qty(q.bid_size),
        "askPrice": spec.fmt_price(q.ask),
        "askQty": spec.fmt_qty(q.ask_size),
        "time": ex.now_ms(),
    }


@route("GET", "/fapi/v1/premiumIndex", Security.NONE)
def get_premium_index(ex: LocalExchange, params: Params) -> Any:
    st = ex.engine.symbol(params.get("symbol") or next(iter(ex.engine.symbols)))
    mark = st.spec.fmt_price(st.mark)
    return {
        "symbol": st.spec.symbol,
        "markPrice": mark,
        "indexPrice": mark,
        "estimatedSettlePrice": mark,
        "lastFundingRate": f"{ex.market.funding_rate:.8f}",
        "interestRate": "0.00010000",
        "nextFundingTime": ex.market.next_funding_ns // 1_000_000,
        "time": ex.now_ms(),
    }


@route("GET", "/fapi/v1/fundingRate", Security.NONE)
def get_funding_rate(ex: LocalExchange, params: Params) -> Any:
    start, end = _time_range(params)
    rows = [
        r
        for r in ex.engine.funding_history
        if (start is None or r["fundingTime"] >= start) and (end is None or r["fundingTime"] <= end)
    ]
    return rows[-_limit(params, 100, 1000) :]


# -- account / configuration -------------------------------------------------------------------


def _account(ex: LocalExchange, v3: bool) -> dict[str, Any]:
    eng = ex.engine
    wallet, upnl = eng.wallet, eng.unrealized_total()
    pos_im, ord_im, maint = eng.position_margin(), eng.order_margin(), eng.maint_margin()
    avail = eng.available()
    asset = {
        "asset": eng.config.asset,
        "walletBalance": num(wallet),
        "unrealizedProfit": num(upnl),
        "marginBalance": num(wallet + upnl),
        "maintMargin": num(maint),
        "initialMargin": num(pos_im + ord_im),
        "positionInitialMargin": num(pos_im),
        "openOrderInitialMargin": num(ord_im),
        "crossWalletBalance": num(wallet),
        "crossUnPnl": num(upnl),
        "availableBalance": num(avail),
        "maxWithdrawAmount": num(min(avail, wallet)),
        "marginAvailable": True,
        "updateTime": eng.update_ms,
    }
    positions = []
    for p in eng.position_rows():
        st = eng.symbols[p.symbol]
        row = {
            "symbol": p.symbol,
            "positionSide": p.side,
            "positionAmt": st.spec.fmt_qty(p.amt),
            "unrealizedProfit": num(unrealized(p, st.mark)),
            "isolatedMargin": "0",
            "notional": num(p.amt * st.mark),
            "isolatedWallet": "0",
            "initialMargin": num(abs(p.amt) * st.mark / st.leverage),
            "maintMargin": num(abs(p.amt) * st.mark * Decimal("0.004")),
            "updateTime": p.update_ms,
        }
        if not v3:
            row.update(
                {
                    "leverage": str(st.leverage),
                    "isolated": st.margin_type == "ISOLATED",
                    "entryPrice": num(p.entry),
                    "maxNotional": st.spec.max_notional,
                }
            )
        positions.append(row)
    return {
        "feeTier": 0,
        "canTrade": True,
        "canDeposit": True,
        "canWithdraw": True,
        "feeBurn": False,
        "multiAssetsMargin": False,
        "tradeGroupId": -1,
        "updateTime": eng.update_ms,
        "totalInitialMargin": asset["initialMargin"],
        "totalMaintMargin": asset["maintMargin"],
        "totalWalletBalance": asset["walletBalance"],
        "totalUnrealizedProfit": asset["unrealizedProfit"],
        "totalMarginBalance": asset["marginBalance"],
        "totalPositionInitialMargin": asset["positionInitialMargin"],
        "totalOpenOrderInitialMargin": asset["openOrderInitialMargin"],
        "totalCrossWalletBalance": asset["crossWalletBalance"],
        "totalCrossUnPnl": asset["crossUnPnl"],
        "availableBalance": asset["availableBalance"],
        "maxWithdrawAmount": asset["maxWithdrawAmount"],
        "assets": [asset],
        "positions": positions,
    }


@route("GET", "/fapi/v2/account", Security.SIGNED)
def get_account_v2(ex: LocalExchange, params: Params) -> Any:
    return _account(ex, v3=False)


@route("GET", "/fapi/v3/account", Security.SIGNED)
def get_account_v3(ex: LocalExchange, params: Params) -> Any:
    return _account(ex, v3=True)


@route("GET", "/fapi/v2/balance", Security.SIGNED)
def get_balance(ex: LocalExchange, params: Params) -> Any:
    asset = _account(ex, v3=True)["assets"][0]
    return [
        {
            "accountAlias": "local",
            "asset": asset["asset"],
            "balance": asset["walletBalance"],
            "crossWalletBalance": asset["crossWalletBalance"],
            "crossUnPnl": asset["crossUnPnl"],
            "availableBalance": asset["availableBalance"],
            "maxWithdrawAmount": asset["maxWithdrawAmount"],
            "marginAvailable": True,
            "updateTime": asset["updateTime"],
        }
    ]


def _position_risk(ex: LocalExchange, params: Params, v3: bool) -> Any:
    eng = ex.engine
    symbol = eng.symbol(params["symbol"]).spec.symbol if params.get("symbol") else None
    rows = []
    for p in eng.position_rows(symbol):
        st = eng.symbols[p.symbol]
        row: dict[str, Any] = {
            "symbol": p.symbol,
            "positionSide": p.side,
            "positionAmt": st.spec.fmt_qty(p.amt),
            "entryPrice": num(p.entry),
            "breakEvenPrice": num(p.entry),
            "markPrice": st.spec.fmt_price(st.mark),
            "unRealizedProfit": num(unrealized(p, st.mark)),
            "liquidationPrice": "0",
            "isolatedMargin": "0",
            "notional": num(p.amt * st.mark),
            "marginAsset": eng.config.asset,
            "isolatedWallet": "0",
            "initialMargin": num(abs(p.amt) * st.mark / st.leverage),
            "maintMargin": num(abs(p.amt) * st.mark * Decimal("0.004")),
            "positionInitialMargin": num(abs(p.amt) * st.mark / st.leverage),
            "openOrderInitialMargin": "0",
            "adl": 0,
            "bidNotional": "0",
            "askNotional": "0",
            "updateTime": p.update_ms,
        }
        if not v3:
            row.update(
                {
                    "marginType": "cross" if st.margin_type == "CROSSED" else "isolated",
                    "isAutoAddMargin": "false",
                    "leverage": str(st.leverage),
                    "maxNotionalValue": st.spec.max_notional,
                }
            )
        rows.append(row)
    return rows


@route("GET", "/fapi/v2/positionRisk", Security.SIGNED)
def get_position_risk_v2(ex: LocalExchange, params: Params) -> Any:
    return _position_risk(ex, params, v3=False)


@route("GET", "/fapi/v3/positionRisk", Security.SIGNED)
def get_position_risk_v3(ex: LocalExchange, params: Params) -> Any:
    return _position_risk(ex, params, v3=True)


@route("GET", "/fapi/v1/positionSide/dual", Security.SIGNED)
def get_dual(ex: LocalExchange, params: Params) -> Any:
    return {"dualSidePosition": ex.engine.dual_side}


@route("POST", "/fapi/v1/positionSide/dual", Security.SIGNED, mutates=True)
def set_dual(ex: LocalExchange, params: Params) -> Any:
    text = params.get("dualSidePosition")
    if text is None or text.lower() not in ("true", "false"):
        raise missing("dualSidePosition")
    wanted = text.lower() == "true"
    eng = ex.engine
    if wanted == eng.dual_side:
        raise error(-4059)
    if eng.open_orders():
        raise error(-4067)
    if any(p.amt for p in eng.positions.values()):
        raise error(-4068)
    eng.dual_side = wanted
    return {"code": 200, "msg": "success"}


@route("GET", "/fapi/v1/symbolConfig", Security.SIGNED)
def get_symbol_config(ex: LocalExchange, params: Params) -> Any:
    eng = ex.engine
    names = [eng.symbol(params["symbol"]).spec.symbol] if params.get("symbol") else eng.symbols
    return [
        {
            "symbol": name,
            "marginType": eng.symbols[name].margin_type,
            "isAutoAddMargin": False,
            "leverage": eng.symbols[name].leverage,
            "maxNotionalValue": eng.symbols[name].spec.max_notional,
        }
        for name in names
    ]


@route("GET", "/fapi/v1/commissionRate", Security.SIGNED)
def get_commission_rate(ex: LocalExchange, params: Params) -> Any:
    st = ex.engine.symbol(params.get("symbol"))
    cfg = ex.engine.config
    return {
        "symbol": st.spec.symbol,
        "makerCommissionRate": f"{cfg.maker_fee:f}",
        "takerCommissionRate": f"{cfg.taker_fee:f}",
    }


@route("POST", "/fapi/v1/leverage", Security.SIGNED, mutates=True)
def set_leverage(ex: LocalExchange, params: Params) -> Any:
    st = ex.engine.symbol(params.get("symbol"))
    text = params.get("leverage")
    leverage = parse_int(text, "leverage")
    if not 1 <= leverage <= 125:
        raise error(-4028, text)
    st.leverage = leverage
    now = ex.now_ms()
    ex.engine.outbox.append(
        {
            "e": "ACCOUNT_CONFIG_UPDATE",
            "E": now,
            "T": now,
            "ac": {"s": st.spec.symbol, "l": leverage},
        }
    )
    return {
        "leverage": leverage,
        "maxNotionalValue": st.spec.max_notional,
        "symbol": st.spec.symbol,
    }


@route("POST", "/fapi/v1/marginType", Security.SIGNED, mutates=True)
def set_margin_type(ex: LocalExchange, params: Params) -> Any:
    st = ex.engine.symbol(params.get("symbol"))
    wanted = params.get("marginType")
    if not wanted:
        raise missing("marginType")
    if wanted not in ("CROSSED", "ISOLATED"):
        raise invalid("marginType")
    if wanted == st.margin_type:
        raise error(-4046)
    eng = ex.engine
    if eng.open_orders(st.spec.symbol):
        raise BinanceError(-4047, "Margin type cannot be changed if there exists open orders.")
    if any(p.amt for p in eng.positions.values() if p.symbol == st.spec.symbol):
        raise BinanceError(-4048, "Margin type cannot be changed if there exists position.")
    st.margin_type = wanted
    return {"code": 200, "msg": "success"}


@route("GET", "/fapi/v1/income", Security.SIGNED)
def get_income(ex: LocalExchange, params: Params) -> Any:
    start, end = _time_range(params)
    kind = params.get("incomeType")
    symbol = ex.engine.symbol(params["symbol"]).spec.symbol if params.get("symbol") else None
    rows = [
        i
        for i in ex.engine.income
        if (kind is None or i.income_type == kind)
        and (symbol is None or i.symbol == symbol)
        and (start is None or i.time_ms >= start)
        and (end is None or i.time_ms <= end)
    ]
    limit = _limit(params, 100, 1000)
    return [income_json(i, ex.engine.config.asset) for i in rows[:limit]]


# -- listenKey ---------------------------------------------------------------------------------


@route("POST", "/fapi/v1/listenKey", Security.USER_STREAM)
def new_listen_key(ex: LocalExchange, params: Params) -> Any:
    return {"listenKey": ex.listen_keys.issue(ex.now_ms())}


@route("PUT", "/fapi/v1/listenKey", Security.USER_STREAM)
def keepalive_listen_key(ex: LocalExchange, params: Params) -> Any:
    if not ex.listen_keys.keepalive(ex.now_ms()):
        raise error(-1125)
    return {"listenKey": ex.listen_keys.active}


@route("DELETE", "/fapi/v1/listenKey", Security.USER_STREAM)
def close_listen_key(ex: LocalExchange, params: Params) -> Any:
    key = ex.listen_keys.active
    ex.listen_keys.revoke()
    if key:
        ex.close_user_streams(key)
    return {}


# -- orders ------------------------------------------------------------------------------------


def _order_out(ex: LocalExchange, order: Any) -> dict[str, Any]:
    return order_json(order, ex.engine.symbols[order.symbol].spec)


@route("POST", "/fapi/v1/order", Security.SIGNED, mutates=True)
def new_order(ex: LocalExchange, params: Params) -> Any:
    return _order_out(ex, ex.engine.place(params, ex.now_ms()))


@route("POST", "/fapi/v1/order/test", Security.SIGNED)
def test_order(ex: LocalExchange, params: Params) -> Any:
    return {}


@route("PUT", "/fapi/v1/order", Security.SIGNED, mutates=True)
def modify_order(ex: LocalExchange, params: Params) -> Any:
    return _order_out(ex, ex.engine.modify(params, ex.now_ms()))


@route("DELETE", "/fapi/v1/order", Security.SIGNED, mutates=True)
def cancel_order(ex: LocalExchange, params: Params) -> Any:
    order = ex.engine.cancel(
        params.get("symbol"), params.get("orderId"), params.get("origClientOrderId"), ex.now_ms()
    )
    return _order_out(ex, order)


@route("GET", "/fapi/v1/order", Security.SIGNED)
def query_order(ex: LocalExchange, params: Params) -> Any:
    st = ex.engine.symbol(params.get("symbol"))
    order = ex.engine.find_order(
        st.spec.symbol, params.get("orderId"), params.get("origClientOrderId")
    )
    if order is None:
        raise error(-2013)
    return _order_out(ex, order)


@route("GET", "/fapi/v1/openOrder", Security.SIGNED)
def query_open_order(ex: LocalExchange, params: Params) -> Any:
    st = ex.engine.symbol(params.get("symbol"))
    order = ex.engine.find_order(
        st.spec.symbol, params.get("orderId"), params.get("origClientOrderId")
    )
    if order is None or not order.is_open:
        raise BinanceError(-2013, "Order does not exist.")
    return _order_out(ex, order)


@route("GET", "/fapi/v1/openOrders", Security.SIGNED)
def open_orders(ex: LocalExchange, params: Params) -> Any:
    symbol = ex.engine.symbol(params["symbol"]).spec.symbol if params.get("symbol") else None
    return [_order_out(ex, o) for o in ex.engine.open_orders(symbol)]


@route("GET", "/fapi/v1/allOrders", Security.SIGNED)
def all_orders(ex: LocalExchange, params: Params) -> Any:
    st = ex.engine.symbol(params.get("symbol"))
    from_id = _opt_int(params, "orderId")
    start, end = _time_range(params)
    rows = [
        o
        for o in ex.engine.orders.values()
        if o.symbol == st.spec.symbol
        and (from_id is None or o.order_id >= from_id)
        and (start is None or o.time_ms >= start)
        and (end is None or o.time_ms <= end)
    ]
    rows.sort(key=lambda o: o.order_id)
    limit = _limit(params, 500, 1000)
    rows = rows[:limit] if from_id is not None or start is not None else rows[-limit:]
    return [_order_out(ex, o) for o in rows]


@route("GET", "/fapi/v1/userTrades", Security.SIGNED)
def user_trades(ex: LocalExchange, params: Params) -> Any:
    st = ex.engine.symbol(params.get("symbol"))
    from_id = _opt_int(params, "fromId")
    order_id = _opt_int(params, "orderId")
    start, end = _time_range(params)
    rows = [
        f
        for f in ex.engine.fills
        if f.symbol == st.spec.symbol
        and (from_id is None or f.trade_id >= from_id)
        and (order_id is None or f.order_id == order_id)
        and (start is None or f.time_ms >= start)
        and (end is None or f.time_ms <= end)
    ]
    limit = _limit(params, 500, 1000)
    rows = rows[:limit] if from_id is not None or start is not None else rows[-limit:]
    return [trade_json(f, st.spec) for f in rows]


@route("DELETE", "/fapi/v1/allOpenOrders", Security.SIGNED, mutates=True)
def cancel_all(ex: LocalExchange, params: Params) -> Any:
    ex.engine.cancel_all(params.get("symbol"), ex.now_ms())
    return {"code": 200, "msg": "The operation of cancel all open order is done."}


def _json_list(params: Params, name: str, maximum: int) -> list[Any]:
    text = params.get(name)
    if not text:
        raise missing(name)
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise missing(name) from None
    if not isinstance(value, list) or not value:
        raise missing(name)
    if len(value) > maximum:
        raise BinanceError(-4082, f"Invalid number of batch place orders: {len(value)}.")
    return value


def _batch_item(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except BinanceError as exc:
        return exc.body()


def _batch(ex: LocalExchange, params: Params, handler: Handler) -> list[Any]:
    """Apply ``handler`` to each item of ``batchOrders``; failures answer per item."""
    out = []
    for item in _json_list(params, "batchOrders", 5):
        if not isinstance(item, dict):
            out.append(missing("batchOrders").body())
            continue
        sub = {k: str(v) for k, v in item.items()}
        out.append(_batch_item(functools.partial(handler, ex, sub)))
    return out


@route("POST", "/fapi/v1/batchOrders", Security.SIGNED, mutates=True)
def batch_new(ex: LocalExchange, params: Params) -> Any:
    return _batch(ex, params, new_order)


@route("PUT", "/fapi/v1/batchOrders", Security.SIGNED, mutates=True)
def batch_modify(ex: LocalExchange, params: Params) -> Any:
    return _batch(ex, params, modify_order)


@route("DELETE", "/fapi/v1/batchOrders", Security.SIGNED, mutates=True)
def batch_cancel(ex: LocalExchange, params: Params) -> Any:
    symbol = params.get("symbol")
    ex.engine.symbol(symbol)
    ids: list[tuple[str | None, str | None]]
    if params.get("orderIdList"):
        ids = [(str(i), None) for i in _json_list(params, "orderIdList", 10)]
    else:
        ids = [(None, str(c)) for c in _json_list(params, "origClientOrderIdList", 10)]
    now = ex.now_ms()

    def cancel_one(oid: str | None, cid: str | None) -> Any:
        return _order_out(ex, ex.engine.cancel(symbol, oid, cid, now))

    return [_batch_item(functools.partial(cancel_one, oid, cid)) for oid, cid in ids]


# -- algo (conditional) orders: not simulated, answered like an account that has none ----------


@route("POST", "/fapi/v1/algoOrder", Security.SIGNED)
def new_algo_order(ex: LocalExchange, params: Params) -> Any:
    ex.engine.symbol(params.get("symbol"))
    raise invalid("algoType")


@route("GET", "/fapi/v1/algoOrder", Security.SIGNED)
def query_algo_order(ex: LocalExchange, params: Params) -> Any:
    raise error(-2013)


@route("DELETE", "/fapi/v1/algoOrder", Security.SIGNED)
def cancel_algo_order(ex: LocalExchange, params: Params) -> Any:
    raise error(-2011)


@route("GET", "/fapi/v1/openAlgoOrders", Security.SIGNED)
def open_algo_orders(ex: LocalExchange, params: Params) -> Any:
    return []


@route("GET", "/fapi/v1/allAlgoOrders", Security.SIGNED)
def all_algo_orders(ex: LocalExchange, params: Params) -> Any:
    return []


@route("DELETE", "/fapi/v1/algoOpenOrders", Security.SIGNED)
def cancel_algo_open_orders(ex: LocalExchange, params: Params) -> Any:
    ex.engine.symbol(params.get("symbol"))
    return {"code": 200, "msg": "The operation of cancel all open order is done."}

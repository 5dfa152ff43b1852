"""Binance JSON shapes: orders, trades, positions, user-stream and market-stream events.

Pure functions from the engine's records to the dicts Binance sends. Field sets and
enum values follow what Nautilus 1.231's msgspec structs require (see
``docs/local-exchange.md``); every price is formatted with the tick string's
decimals so Nautilus sees one precision everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from hedgegrid_ops.venues.binance_local.market import KlineRow, Quote, TradePrint
from hedgegrid_ops.venues.binance_local.spec import SymbolSpec

ZERO = Decimal(0)


def num(value: Decimal, places: int = 8) -> str:
    """A money/rate amount as Binance prints it: fixed point, trailing zeros trimmed."""
    text = f"{value.quantize(Decimal(1).scaleb(-places)):f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


@dataclass(slots=True)
class Order:
    """An order as the venue keeps it (open or finished)."""

    order_id: int
    client_id: str
    symbol: str
    side: str
    position_side: str
    type: str
    tif: str
    price: Decimal
    qty: Decimal
    reduce_only: bool
    time_ms: int
    update_ms: int
    good_till_ms: int = 0
    executed: Decimal = ZERO
    cum_quote: Decimal = ZERO
    status: str = "NEW"

    @property
    def remaining(self) -> Decimal:
        return self.qty - self.executed

    @property
    def avg_price(self) -> Decimal:
        return self.cum_quote / self.executed if self.executed else ZERO

    @property
    def is_open(self) -> bool:
        return self.status in ("NEW", "PARTIALLY_FILLED")


@dataclass(slots=True)
class Position:
    """One position leg; ``amt`` is signed like Binance's positionAmt (SHORT < 0)."""

    symbol: str
    side: str
    amt: Decimal = ZERO
    entry: Decimal = ZERO
    realized: Decimal = ZERO
    update_ms: int = 0


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution of our order against the simulated market."""

    trade_id: int
    order_id: int
    symbol: str
    side: str
    position_side: str
    price: Decimal
    qty: Decimal
    realized: Decimal
    commission: Decimal
    maker: bool
    time_ms: int


@dataclass(frozen=True, slots=True)
class Income:
    """A balance change as ``GET /fapi/v1/income`` lists it."""

    tran_id: int
    symbol: str
    income_type: str
    income: Decimal
    time_ms: int
    trade_id: str = ""
    info: str = field(default="")


def order_json(o: Order, spec: SymbolSpec) -> dict[str, Any]:
    """``BinanceOrder`` as REST returns it (order, openOrders, allOrders, cancel)."""
    return {
        "orderId": o.order_id,
        "symbol": o.symbol,
        "status": o.status,
        "clientOrderId": o.client_id,
        "price": spec.fmt_price(o.price) if o.type == "LIMIT" else "0",
        "avgPrice": num(o.avg_price),
        "origQty": spec.fmt_qty(o.qty),
        "executedQty": spec.fmt_qty(o.executed),
        "cumQty": spec.fmt_qty(o.executed),
        "cumQuote": num(o.cum_quote),
        "timeInForce": o.tif,
        "type": o.type,
        "reduceOnly": o.reduce_only,
        "closePosition": False,
        "side": o.side,
        "positionSide": o.position_side,
        "stopPrice": "0",
        "workingType": "CONTRACT_PRICE",
        "priceProtect": False,
        "origType": o.type,
        "priceMatch": "NONE",
        "selfTradePreventionMode": "EXPIRE_MAKER",
        "goodTillDate": o.good_till_ms,
        "time": o.time_ms,
        "updateTime": o.update_ms,
    }


def order_update(
    o: Order,
    spec: SymbolSpec,
    exec_type: str,
    now_ms: int,
    fill: Fill | None = None,
    bids_notional: Decimal = ZERO,
    asks_notional: Decimal = ZERO,
) -> dict[str, Any]:
    """``ORDER_TRADE_UPDATE`` with every field ``BinanceFuturesOrderData`` requires."""
    data: dict[str, Any] = {
        "s": o.symbol,
        "c": o.client_id,
        "S": o.side,
        "o": o.type,
        "f": o.tif,
        "q": spec.fmt_qty(o.qty),
        "p": spec.fmt_price(o.price) if o.type == "LIMIT" else "0",
        "ap": num(o.avg_price),
        "sp": "0",
        "x": exec_type,
        "X": o.status,
        "i": o.order_id,
        "l": spec.fmt_qty(fill.qty) if fill else "0",
        "z": spec.fmt_qty(o.executed),
        "L": spec.fmt_price(fill.price) if fill else "0",
        "T": now_ms,
        "t": fill.trade_id if fill else 0,
        "b": num(bids_notional),
        "a": num(asks_notional),
        "m": fill.maker if fill else False,
        "R": o.reduce_only,
        "wt": "CONTRACT_PRICE",
        "ot": o.type,
        "ps": o.position_side,
        "cp": False,
        "rp": num(fill.realized) if fill else "0",
        "pP": False,
        "si": 0,
        "ss": 0,
        "V": "EXPIRE_MAKER",
        "pm": "NONE",
        "gtd": o.good_till_ms,
    }
    if fill is not None:
        data["N"] = spec.quote
        data["n"] = num(fill.commission)
    return {"e": "ORDER_TRADE_UPDATE", "E": now_ms, "T": now_ms, "o": data}


def position_update(p: Position, spec: SymbolSpec, mark: Decimal) -> dict[str, Any]:
    """One ``P`` item of ``ACCOUNT_UPDATE``."""
    return {
        "s": p.symbol,
        "pa": spec.fmt_qty(p.amt),
        "ep": num(p.entry),
        "bep": num(p.entry),
        "cr": num(p.realized),
        "up": num(unrealized(p, mark)),
        "mt": "cross",
        "iw": "0",
        "ps": p.side,
    }


def account_update(
    reason: str,
    now_ms: int,
    asset: str,
    wallet: Decimal,
    positions: list[dict[str, Any]],
) -> dict[str, Any]:
    """``ACCOUNT_UPDATE``: Nautilus builds its AccountState from ``B`` (wallet balance)."""
    return {
        "e": "ACCOUNT_UPDATE",
        "E": now_ms,
        "T": now_ms,
        "a": {
            "m": reason,
            "B": [{"a": asset, "wb": num(wallet), "cw": num(wallet), "bc": "0"}],
            "P": positions,
        },
    }


def unrealized(p: Position, mark: Decimal) -> Decimal:
    """Unrealized PnL of a leg at ``mark`` (signed amount makes one formula serve both sides)."""
    if not p.amt or not mark:
        return ZERO
    return (mark - p.entry) * p.amt


def trade_json(f: Fill, spec: SymbolSpec) -> dict[str, Any]:
    """One row of ``GET /fapi/v1/userTrades``."""
    return {
        "symbol": f.symbol,
        "id": f.trade_id,
        "orderId": f.order_id,
        "side": f.side,
        "price": spec.fmt_price(f.price),
        "qty": spec.fmt_qty(f.qty),
        "realizedPnl": num(f.realized),
        "marginAsset": spec.quote,
        "quoteQty": num(f.price * f.qty),
        "commission": num(f.commission),
        "commissionAsset": spec.quote,
        "time": f.time_ms,
        "positionSide": f.position_side,
        "buyer": f.side == "BUY",
        "maker": f.maker,
    }


def income_json(i: Income, asset: str) -> dict[str, Any]:
    return {
        "symbol": i.symbol,
        "incomeType": i.income_type,
        "income": num(i.income),
        "asset": asset,
        "info": i.info,
        "time": i.time_ms,
        "tranId": i.tran_id,
        "tradeId": i.trade_id,
    }


# -- market streams ----------------------------------------------------------------------------


def book_ticker(spec: SymbolSpec, q: Quote, update_id: int, ts_ms: int) -> dict[str, Any]:
    return {
        "e": "bookTicker",
        "u": update_id,
        "s": spec.symbol,
        "b": spec.fmt_price(q.bid),
        "B": spec.fmt_qty(q.bid_size),
        "a": spec.fmt_price(q.ask),
        "A": spec.fmt_qty(q.ask_size),
        "T": ts_ms,
        "E": ts_ms,
    }


def agg_trade(spec: SymbolSpec, t: TradePrint) -> dict[str, Any]:
    ts_ms = t.ts_ns // 1_000_000
    return {
        "e": "aggTrade",
        "E": ts_ms,
        "s": spec.symbol,
        "a": t.agg_id,
        "p": spec.fmt_price(t.price),
        "q": spec.fmt_qty(t.size),
        "f": t.agg_id,
        "l": t.agg_id,
        "T": ts_ms,
        "m": t.buyer_is_maker,
    }


def kline_event(spec: SymbolSpec, k: KlineRow, interval: str, event_ms: int) -> dict[str, Any]:
    return {
        "e": "kline",
        "E": event_ms,
        "s": spec.symbol,
        "k": {
            "t": k.open_ms,
            "T": k.close_ms,
            "s": spec.symbol,
            "i": interval,
            "f": k.first_trade_id,
            "L": k.last_trade_id,
            "o": spec.fmt_price(k.open),
            "c": spec.fmt_price(k.close),
            "h": spec.fmt_price(k.high),
            "l": spec.fmt_price(k.low),
            "v": spec.fmt_qty(k.volume),
            "n": k.trades,
            "x": True,
            "q": num(k.quote_volume, 5),
            "V": spec.fmt_qty(k.taker_buy_volume),
            "Q": num(k.taker_buy_quote, 5),
            "B": "0",
        },
    }


def kline_array(spec: SymbolSpec, k: KlineRow) -> list[Any]:
    """One row of ``GET /fapi/v1/klines``."""
    return [
        k.open_ms,
        spec.fmt_price(k.open),
        spec.fmt_price(k.high),
        spec.fmt_price(k.low),
        spec.fmt_price(k.close),
        spec.fmt_qty(k.volume),
        k.close_ms,
        num(k.quote_volume, 5),
        k.trades,
        spec.fmt_qty(k.taker_buy_volume),
        num(k.taker_buy_quote, 5),
        "0",
    ]


def mark_price_event(
    spec: SymbolSpec, mark: Decimal, rate: Decimal, next_funding_ms: int, event_ms: int
) -> dict[str, Any]:
    """``markPriceUpdate``: ``r`` is the funding rate, ``T`` the next funding time."""
    price = spec.fmt_price(mark)
    return {
        "e": "markPriceUpdate",
        "E": event_ms,
        "s": spec.symbol,
        "p": price,
        "i": price,
        "P": price,
        "r": f"{rate:.8f}",
        "T": next_funding_ms,
    }

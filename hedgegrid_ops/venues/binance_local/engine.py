"""Matching engine and account for one participant against the simulated market.

Pure and synchronous: no aiohttp, no asyncio, no clock of its own (every call gets
``now_ms``). Requests are validated completely before anything changes, so a
refused request (a :class:`BinanceError`) leaves the account untouched. State
changes produce Binance user-stream events in :attr:`Engine.outbox`, in the order
Binance sends them (``ACCOUNT_UPDATE`` before the ``ORDER_TRADE_UPDATE`` of a fill).

Semantics (Binance USDT-M, simplified where the docs say so):

* Resting limit orders fill as **maker at their own price** when a market trade
  prints through them (a buy at L fills on a print below L, or at L by a seller);
  the print's size is shared in price-time priority, so an order larger than the
  print fills partially.
* Marketable limit orders (GTC/GTD/IOC/FOK) take the opposite top of book up to
  its displayed size; MARKET orders fill in full at the touch (there is no depth
  beyond the top level). IOC remainders expire; FOK that cannot fill fully → -5021;
  post-only (GTX) that would take → -5022.
* Hedge mode (LONG/SHORT legs) or one-way (BOTH); average entry, realized PnL,
  commissions, cross margin with -2019 when an opening order's initial margin
  exceeds the available balance; funding paid/received at each funding time.
"""

from __future__ import annotations

import re
import secrets
from collections import deque
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from hedgegrid_ops.venues.binance_local.errors import BinanceError, error, invalid, missing
from hedgegrid_ops.venues.binance_local.market import Quote, TradePrint
from hedgegrid_ops.venues.binance_local.spec import SymbolSpec, parse_int
from hedgegrid_ops.venues.binance_local.wire import (
    ZERO,
    Fill,
    Income,
    Order,
    Position,
    account_update,
    order_update,
    position_update,
    unrealized,
)

MAX_OPEN_ORDERS = 200
# Binance's tier-1 maintenance margin rate for BTCUSDT (reported, not enforced:
# there is no liquidation).
MAINT_MARGIN_RATE = Decimal("0.004")
_CLIENT_ID = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")
_HISTORY_LIMIT = 10_000
_TIFS = ("GTC", "IOC", "FOK", "GTX", "GTD")
_CONDITIONAL = ("STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET")
_GTD_MIN_AHEAD_MS = 600_000


@dataclass(frozen=True, slots=True)
class AccountConfig:
    """Starting account and fee schedule (maker/taker as fractions, 0.0002 = 2 bp)."""

    asset: str = "USDT"
    starting_balance: Decimal = Decimal("10000")
    maker_fee: Decimal = Decimal("0.0002")
    taker_fee: Decimal = Decimal("0.0005")
    leverage: int = 20
    dual_side: bool = True


@dataclass(slots=True)
class _SymbolState:
    spec: SymbolSpec
    leverage: int
    margin_type: str = "CROSSED"
    quote: Quote | None = None
    mark: Decimal = ZERO
    # Displayed size already taken at the current quote (reset by the next tick).
    taken_bid: Decimal = ZERO
    taken_ask: Decimal = ZERO


@dataclass(slots=True)
class _Ids:
    order: int = 8_389_765_000
    trade: int = 600_000_000
    tran: int = 1


class Engine:
    """The whole venue-side account; see the module docstring for the rules."""

    def __init__(self, specs: dict[str, SymbolSpec], config: AccountConfig | None = None) -> None:
        self.specs = specs
        self.config = config or AccountConfig()
        self.outbox: list[dict[str, Any]] = []
        self.wallet = self.config.starting_balance
        self.dual_side = self.config.dual_side
        self.symbols = {
            s: _SymbolState(spec=spec, leverage=self.config.leverage)
            for s, spec in self.specs.items()
        }
        self.positions: dict[tuple[str, str], Position] = {}
        self.orders: dict[int, Order] = {}  # every order still remembered, open or not
        self.by_client: dict[tuple[str, str], int] = {}
        self.open_ids: dict[str, list[int]] = {s: [] for s in self.specs}
        self.fills: deque[Fill] = deque(maxlen=_HISTORY_LIMIT)
        self.income: deque[Income] = deque(maxlen=_HISTORY_LIMIT)
        self.funding_history: deque[dict[str, Any]] = deque(maxlen=1000)
        self.ids = _Ids()
        self.update_ms = 0
        self.reject_next: BinanceError | None = None
        # Only an order with this timeInForce takes the rejection (None: the next order).
        self.reject_next_tif: str | None = None

    # -- lookups -----------------------------------------------------------------------------

    def symbol(self, symbol: str | None) -> _SymbolState:
        if not symbol:
            raise missing("symbol")
        state = self.symbols.get(symbol.upper())
        if state is None:
            raise error(-1121)
        return state

    def find_order(self, symbol: str, order_id: str | None, client_id: str | None) -> Order | None:
        """An order by venue id or client id (``None`` when neither matches)."""
        if order_id:
            oid = parse_int(order_id, "orderId")
            order = self.orders.get(oid)
            if order is not None and order.symbol == symbol:
                if client_id and order.client_id != client_id:
                    return None
                return order
            return None
        if client_id:
            oid2 = self.by_client.get((symbol, client_id))
            return self.orders.get(oid2) if oid2 is not None else None
        raise missing("orderId")

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        names = [symbol] if symbol else list(self.open_ids)
        return [self.orders[i] for s in names for i in self.open_ids.get(s, [])]

    def position(self, symbol: str, side: str) -> Position:
        key = (symbol, side)
        pos = self.positions.get(key)
        if pos is None:
            pos = self.positions[key] = Position(symbol=symbol, side=side)
        return pos

    def position_rows(self, symbol: str | None = None) -> list[Position]:
        """Every leg of every (or one) symbol: LONG+SHORT in hedge mode, BOTH otherwise."""
        sides = ("LONG", "SHORT") if self.dual_side else ("BOTH",)
        names = [symbol] if symbol else list(self.symbols)
        return [self.position(s, side) for s in names for side in sides]

    # -- margin --------------------------------------------------------------------------------

    def unrealized_total(self) -> Decimal:
        return sum(
            (unrealized(p, self.symbols[p.symbol].mark) for p in self.positions.values()), ZERO
        )

    def position_margin(self) -> Decimal:
        total = ZERO
        for p in self.positions.values():
            st = self.symbols[p.symbol]
            total += abs(p.amt) * st.mark / st.leverage
        return total

    def maint_margin(self) -> Decimal:
        return sum(
            (
                abs(p.amt) * self.symbols[p.symbol].mark * MAINT_MARGIN_RATE
                for p in self.positions.values()
            ),
            ZERO,
        )

    def order_margin(self) -> Decimal:
        total = ZERO
        for o in self.open_orders():
            if self._is_opening(o.side, o.position_side, o.reduce_only):
                total += o.remaining * o.price / self.symbols[o.symbol].leverage
        return total

    def available(self) -> Decimal:
        """Binance's availableBalance for cross margin, floored at zero."""
        free = self.wallet + self.unrealized_total() - self.position_margin() - self.order_margin()
        return max(free, ZERO)

    def _is_opening(self, side: str, position_side: str, reduce_only: bool) -> bool:
        if position_side == "LONG":
            return side == "BUY"
        if position_side == "SHORT":
            return side == "SELL"
        return not reduce_only

    # -- placing -------------------------------------------------------------------------------

    def place(self, params: dict[str, str], now_ms: int) -> Order:
        """Validate and accept a new order (``POST /fapi/v1/order``), matching it at once."""
        if self.reject_next is not None and self.reject_next_tif in (
            None,
            params.get("timeInForce"),
        ):
            rejection, self.reject_next = self.reject_next, None
            self.reject_next_tif = None
            raise rejection
        st = self.symbol(params.get("symbol"))
        spec = st.spec
        side = params.get("side")
        if not side:
            raise missing("side")
        if side not in ("BUY", "SELL"):
            raise error(-1117)
        otype = params.get("type")
        if not otype:
            raise missing("type")
        if otype in _CONDITIONAL:
            raise error(-4120)
        if otype not in ("LIMIT", "MARKET"):
            raise error(-1116)
        position_side = params.get("positionSide") or "BOTH"
        if position_side not in ("BOTH", "LONG", "SHORT"):
            raise invalid("positionSide")
        if (position_side == "BOTH") == self.dual_side:
            raise error(-4061)
        reduce_text = params.get("reduceOnly")
        if reduce_text is not None and reduce_text.lower() not in ("true", "false"):
            raise invalid("reduceOnly")
        if self.dual_side and reduce_text is not None:
            raise error(-1106, "reduceonly")
        reduce_only = reduce_text is not None and reduce_text.lower() == "true"
        market = otype == "MARKET"
        qty = spec.check_qty(params.get("quantity"), market=market)
        if market:
            if params.get("price"):
                raise error(-1106, "price")
            tif = "GTC"
            price = ZERO
        else:
            tif = params.get("timeInForce") or ""
            if not tif:
                raise missing("timeInForce")
            if tif not in _TIFS:
                raise error(-1115)
            if params.get("priceMatch"):
                raise invalid("priceMatch")
            price = spec.check_price(params.get("price"))
        good_till = 0
        if tif == "GTD":
            good_till = parse_int(params.get("goodTillDate"), "goodTillDate")
            if good_till < now_ms + _GTD_MIN_AHEAD_MS or good_till >= 253402300799000:
                raise error(-5040)
        client_id = params.get("newClientOrderId") or _random_client_id()
        if not _CLIENT_ID.match(client_id):
            raise error(-4015)
        existing = self.by_client.get((spec.symbol, client_id))
        if existing is not None and self.orders[existing].is_open:
            raise error(-4116)
        if len(self.open_ids[spec.symbol]) >= MAX_OPEN_ORDERS:
            raise error(-2025)

        opening = self._is_opening(side, position_side, reduce_only)
        quote = st.quote
        if quote is None:
            raise error(-1001)  # no market yet: Binance's "try again"
        touch = quote.ask if side == "BUY" else quote.bid
        crosses = market or (price >= quote.ask if side == "BUY" else price <= quote.bid)
        ref_price = touch if market else price
        if opening and not market and price * qty < Decimal(spec.min_notional):
            raise error(-4164, spec.min_notional)
        if opening and market and touch * qty < Decimal(spec.min_notional):
            raise error(-4164, spec.min_notional)
        if not opening and position_side in ("LONG", "SHORT"):
            held = abs(self.position(spec.symbol, position_side).amt)
            if qty > held:
                raise error(-2022)
        if reduce_only and position_side == "BOTH":
            amt = self.position(spec.symbol, "BOTH").amt
            if amt == 0 or (amt > 0) == (side == "BUY") or qty > abs(amt):
                raise error(-2022)
        if tif == "GTX" and crosses:
            raise error(-5022)
        if tif == "FOK" and (not crosses or qty > self._displayed(st, side)):
            raise error(-5021)
        if opening and ref_price * qty / st.leverage > self.available():
            raise error(-2019)

        # Accepted: from here on state changes.
        self.ids.order += 1
        order = Order(
            order_id=self.ids.order,
            client_id=client_id,
            symbol=spec.symbol,
            side=side,
            position_side=position_side,
            type=otype,
            tif=tif,
            price=price,
            qty=qty,
            reduce_only=reduce_only,
            time_ms=now_ms,
            update_ms=now_ms,
            good_till_ms=good_till,
        )
        self.orders[order.order_id] = order
        self.by_client[(spec.symbol, client_id)] = order.order_id
        self.open_ids[spec.symbol].append(order.order_id)
        self._emit_order(order, "NEW", now_ms)
        if crosses:
            self._take(st, order, now_ms)
        self._trim_history()
        return order

    def _displayed(self, st: _SymbolState, side: str) -> Decimal:
        q = st.quote
        if q is None:
            return ZERO
        return q.ask_size - st.taken_ask if side == "BUY" else q.bid_size - st.taken_bid

    def _take(self, st: _SymbolState, order: Order, now_ms: int) -> None:
        """Fill a marketable order as taker at the opposite touch, then expire IOC rest."""
        q = st.quote
        assert q is not None
        touch = q.ask if order.side == "BUY" else q.bid
        qty = order.remaining
        if order.type != "MARKET":
            qty = min(qty, max(self._displayed(st, order.side), ZERO))
        if qty > 0:
            if order.side == "BUY":
                st.taken_ask += qty
            else:
                st.taken_bid += qty
            self._fill(order, touch, qty, maker=False, now_ms=now_ms)
        if order.is_open and order.tif in ("IOC", "FOK"):
            self._finish(order, "EXPIRED", "EXPIRED", now_ms)

    # -- cancel / modify -----------------------------------------------------------------------

    def cancel(
        self, symbol: str | None, order_id: str | None, client_id: str | None, now_ms: int
    ) -> Order:
        st = self.symbol(symbol)
        order = self.find_order(st.spec.symbol, order_id, client_id)
        if order is None or not order.is_open:
            raise error(-2011)
        self._finish(order, "CANCELED", "CANCELED", now_ms)
        return order

    def cancel_all(self, symbol: str | None, now_ms: int) -> int:
        st = self.symbol(symbol)
        orders = self.open_orders(st.spec.symbol)
        for order in orders:
            self._finish(order, "CANCELED", "CANCELED", now_ms)
        return len(orders)

    def modify(self, params: dict[str, str], now_ms: int) -> Order:
        """``PUT /fapi/v1/order``: new price and quantity for an open LIMIT order."""
        st = self.symbol(params.get("symbol"))
        spec = st.spec
        order = self.find_order(spec.symbol, params.get("orderId"), params.get("origClientOrderId"))
        side = params.get("side")
        if not side:
            raise missing("side")
        qty = spec.check_qty(params.get("quantity"), market=False)
        price = spec.check_price(params.get("price"))
        if order is None or not order.is_open:
            raise error(-2013)
        if order.type != "LIMIT" or side != order.side:
            raise invalid("side" if side != order.side else "type")
        if qty <= order.executed:
            raise error(-4003)
        if qty == order.qty and price == order.price:
            raise error(-5027)
        quote = st.quote
        assert quote is not None
        crosses = price >= quote.ask if side == "BUY" else price <= quote.bid
        if order.tif == "GTX" and crosses:
            raise error(-5022)
        if self._is_opening(order.side, order.position_side, order.reduce_only):
            old = order.remaining * order.price
            new = (qty - order.executed) * price
            if new > old and (new - old) / st.leverage > self.available():
                raise error(-2019)
        elif order.position_side in ("LONG", "SHORT") and qty - order.executed > abs(
            self.position(spec.symbol, order.position_side).amt
        ):
            raise error(-2022)
        order.qty, order.price, order.update_ms = qty, price, now_ms
        # Amended orders lose their queue place, like Binance.
        ids = self.open_ids[spec.symbol]
        ids.remove(order.order_id)
        ids.append(order.order_id)
        self._emit_order(order, "AMENDMENT", now_ms)
        if crosses:
            self._take(st, order, now_ms)
        return order

    # -- market --------------------------------------------------------------------------------

    def on_quote(self, symbol: str, quote: Quote, mark: Decimal | None) -> None:
        st = self.symbols[symbol]
        st.quote = quote
        st.taken_bid = st.taken_ask = ZERO
        if mark is not None:
            st.mark = mark

    def on_trade(self, symbol: str, trade: TradePrint, now_ms: int) -> None:
        """Fill resting orders the print went through, in price-time priority."""
        ids = self.open_ids.get(symbol)
        if not ids:
            return
        left = trade.size
        price = trade.price
        buys = [
            self.orders[i]
            for i in ids
            if self.orders[i].side == "BUY"
            and (
                price < self.orders[i].price
                or (price == self.orders[i].price and trade.buyer_is_maker)
            )
        ]
        sells = [
            self.orders[i]
            for i in ids
            if self.orders[i].side == "SELL"
            and (
                price > self.orders[i].price
                or (price == self.orders[i].price and not trade.buyer_is_maker)
            )
        ]
        buys.sort(key=lambda o: -o.price)  # stable: time priority within a level
        sells.sort(key=lambda o: o.price)
        for order in buys + sells:
            if left <= 0:
                break
            if not order.is_open:
                continue  # closed by an earlier fill in this loop (position went flat)
            qty = min(order.remaining, left)
            left -= qty
            self._fill(order, order.price, qty, maker=True, now_ms=now_ms)

    def expire_due(self, now_ms: int) -> None:
        """Expire GTD orders whose goodTillDate has passed."""
        for order in self.open_orders():
            if order.tif == "GTD" and order.good_till_ms and order.good_till_ms <= now_ms:
                self._finish(order, "EXPIRED", "EXPIRED", now_ms)

    def settle_funding(
        self, symbol: str, rate: Decimal, mark: Decimal, funding_ms: int, now_ms: int
    ) -> Decimal:
        """Pay or receive funding on every open leg: longs pay ``rate`` × notional when positive."""
        st = self.symbols[symbol]
        self.funding_history.append(
            {
                "symbol": symbol,
                "fundingRate": f"{rate:.8f}",
                "fundingTime": funding_ms,
                "markPrice": st.spec.fmt_price(mark),
            }
        )
        total = ZERO
        for p in self.positions.values():
            if p.symbol != symbol or not p.amt:
                continue
            payment = (-p.amt * mark * rate).quantize(Decimal("0.00000001"))
            total += payment
            self._income(symbol, "FUNDING_FEE", payment, now_ms)
        if total or any(p.amt for p in self.positions.values() if p.symbol == symbol):
            self.wallet += total
            self.update_ms = now_ms
            self.outbox.append(
                account_update("FUNDING_FEE", now_ms, self.config.asset, self.wallet, [])
            )
        return total

    # -- internals -----------------------------------------------------------------------------

    def _fill(self, order: Order, price: Decimal, qty: Decimal, maker: bool, now_ms: int) -> None:
        st = self.symbols[order.symbol]
        spec = st.spec
        pos = self.position(order.symbol, order.position_side)
        delta = qty if order.side == "BUY" else -qty
        closing = pos.amt != 0 and (pos.amt > 0) != (delta > 0)
        if closing and order.position_side != "BOTH":
            qty = min(qty, abs(pos.amt))  # a hedge leg never flips
            delta = qty if order.side == "BUY" else -qty
        realized = self._apply(pos, delta, price)
        pos.update_ms = now_ms
        fee_rate = self.config.maker_fee if maker else self.config.taker_fee
        commission = (price * qty * fee_rate).quantize(Decimal("0.00000001"))
        self.wallet += realized - commission
        self.update_ms = now_ms
        order.executed += qty
        order.cum_quote += price * qty
        order.update_ms = now_ms
        self.ids.trade += 1
        fill = Fill(
            trade_id=self.ids.trade,
            order_id=order.order_id,
            symbol=order.symbol,
            side=order.side,
            position_side=order.position_side,
            price=price,
            qty=qty,
            realized=realized,
            commission=commission,
            maker=maker,
            time_ms=now_ms,
        )
        self.fills.append(fill)
        if realized:
            self._income(order.symbol, "REALIZED_PNL", realized, now_ms, str(fill.trade_id))
        self._income(order.symbol, "COMMISSION", -commission, now_ms, str(fill.trade_id))
        done = order.executed >= order.qty
        order.status = "FILLED" if done else "PARTIALLY_FILLED"
        if done:
            self.open_ids[order.symbol].remove(order.order_id)
        self.outbox.append(
            account_update(
                "ORDER",
                now_ms,
                self.config.asset,
                self.wallet,
                [position_update(pos, spec, st.mark or price)],
            )
        )
        self._emit_order(order, "TRADE", now_ms, fill)
        if pos.amt == 0 and order.position_side != "BOTH":
            # Nothing left to close: remaining close orders of this leg expire, as
            # Binance does with reduce-only orders when the position is gone.
            for other in self.open_orders(order.symbol):
                if other.position_side == order.position_side and not self._is_opening(
                    other.side, other.position_side, other.reduce_only
                ):
                    self._finish(other, "EXPIRED", "EXPIRED", now_ms)

    @staticmethod
    def _apply(pos: Position, delta: Decimal, price: Decimal) -> Decimal:
        """Apply a signed fill to a leg; returns the realized PnL (before fees)."""
        amt = pos.amt
        if amt == 0 or (amt > 0) == (delta > 0):
            new = amt + delta
            pos.entry = (abs(amt) * pos.entry + abs(delta) * price) / abs(new)
            pos.entry = pos.entry.quantize(Decimal("0.00000001"))
            pos.amt = new
            return ZERO
        closed = min(abs(delta), abs(amt))
        sign = 1 if amt > 0 else -1
        realized = ((price - pos.entry) * closed * sign).quantize(Decimal("0.00000001"))
        pos.amt = amt + (closed if delta > 0 else -closed)
        pos.realized += realized
        rest = abs(delta) - closed
        if pos.amt == 0:
            pos.entry = ZERO
        if rest > 0:  # one-way mode flips through zero
            pos.amt = rest if delta > 0 else -rest
            pos.entry = price
        return realized

    def _finish(self, order: Order, status: str, exec_type: str, now_ms: int) -> None:
        order.status = status
        order.update_ms = now_ms
        ids = self.open_ids[order.symbol]
        if order.order_id in ids:
            ids.remove(order.order_id)
        self._emit_order(order, exec_type, now_ms)

    def _emit_order(
        self, order: Order, exec_type: str, now_ms: int, fill: Fill | None = None
    ) -> None:
        bids = asks = ZERO
        for o in self.open_orders(order.symbol):
            if o.side == "BUY":
                bids += o.remaining * o.price
            else:
                asks += o.remaining * o.price
        spec = self.symbols[order.symbol].spec
        self.outbox.append(order_update(order, spec, exec_type, now_ms, fill, bids, asks))

    def _income(
        self, symbol: str, kind: str, amount: Decimal, now_ms: int, trade_id: str = ""
    ) -> None:
        self.ids.tran += 1
        self.income.append(Income(self.ids.tran, symbol, kind, amount, now_ms, trade_id))

    def _trim_history(self) -> None:
        """Forget the oldest finished orders beyond the history limit (open ones stay)."""
        excess = len(self.orders) - _HISTORY_LIMIT
        if excess <= 0:
            return
        for oid in list(self.orders)[: excess * 2]:
            order = self.orders[oid]
            if not order.is_open and excess > 0:
                del self.orders[oid]
                self.by_client.pop((order.symbol, order.client_id), None)
                excess -= 1

    def drain(self) -> list[dict[str, Any]]:
        """Take the user-stream events produced since the last call."""
        events, self.outbox = self.outbox, []
        return events


def _random_client_id() -> str:
    return "x-" + secrets.token_hex(10)

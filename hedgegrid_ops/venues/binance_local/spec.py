"""The contract the exchange lists (BTCUSDT perpetual) and its Binance filters.

Filters are real Binance USDT-M values for BTCUSDT; the tick and step match the
simulated market (:mod:`hedgegrid_ops.venues.sim.process` prices are 0.1 multiples and
sizes 0.001 multiples). Nautilus derives instrument precision from the *strings*
(``"0.10"`` → 2 decimals), so the same strings are used everywhere on the wire.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from hedgegrid_ops.venues.binance_local.errors import BinanceError, error, missing
from hedgegrid_ops.venues.sim.process import PRICE_TICK, SIZE_STEP


@dataclass(frozen=True, slots=True)
class SymbolSpec:
    """One listed perpetual: identifiers and the filters orders are checked against."""

    symbol: str
    base: str
    quote: str
    tick_size: str
    step_size: str
    min_price: str
    max_price: str
    min_qty: str
    max_qty: str
    market_max_qty: str
    min_notional: str
    price_precision: int
    quantity_precision: int
    maint_margin_pct: str = "2.5000"
    required_margin_pct: str = "5.0000"
    max_notional: str = "80000000"

    @property
    def tick(self) -> Decimal:
        return Decimal(self.tick_size)

    @property
    def step(self) -> Decimal:
        return Decimal(self.step_size)

    @property
    def price_decimals(self) -> int:
        """Decimals of the tick string: what Nautilus uses as price precision."""
        return _decimals(self.tick_size)

    @property
    def qty_decimals(self) -> int:
        return _decimals(self.step_size)

    def fmt_price(self, value: Decimal) -> str:
        """Price on the wire, always with the tick string's number of decimals."""
        return f"{value:.{self.price_decimals}f}"

    def fmt_qty(self, value: Decimal) -> str:
        return f"{value:.{self.qty_decimals}f}"

    def check_price(self, text: str | None, name: str = "price") -> Decimal:
        """Parse and validate a client price the way Binance's PRICE_FILTER does."""
        value = parse_decimal(text, name)
        if value <= 0:
            raise error(-4001)
        if _exponent_digits(value) > self.price_precision:
            raise error(-1111)
        if value < Decimal(self.min_price):
            raise error(-4013)
        if value > Decimal(self.max_price):
            raise error(-4002)
        if value % self.tick != 0:
            raise error(-4014)
        return value

    def check_qty(self, text: str | None, market: bool, name: str = "quantity") -> Decimal:
        """Parse and validate a quantity against LOT_SIZE / MARKET_LOT_SIZE."""
        value = parse_decimal(text, name)
        if value <= 0:
            raise error(-4003)
        if _exponent_digits(value) > self.quantity_precision:
            raise error(-1111)
        if value % self.step != 0:
            raise error(-4023)
        if value < Decimal(self.min_qty):
            raise error(-4004)
        if value > Decimal(self.market_max_qty if market else self.max_qty):
            raise error(-4005)
        return value

    def exchange_info_symbol(self) -> dict[str, object]:
        """This symbol's entry in ``GET /fapi/v1/exchangeInfo``.

        Only filter types, order types and TIFs Nautilus's strict enums know are
        listed: one unknown value fails the whole exchangeInfo decode.
        """
        return {
            "symbol": self.symbol,
            "pair": self.symbol,
            "contractType": "PERPETUAL",
            "deliveryDate": 4133404800000,
            "onboardDate": 1569398400000,
            "status": "TRADING",
            "maintMarginPercent": self.maint_margin_pct,
            "requiredMarginPercent": self.required_margin_pct,
            "baseAsset": self.base,
            "quoteAsset": self.quote,
            "marginAsset": self.quote,
            "pricePrecision": self.price_precision,
            "quantityPrecision": self.quantity_precision,
            "baseAssetPrecision": 8,
            "quotePrecision": 8,
            "underlyingType": "COIN",
            "underlyingSubType": ["PoW"],
            "settlePlan": 0,
            "triggerProtect": "0.0500",
            "liquidationFee": "0.012500",
            "marketTakeBound": "0.05",
            "maxMoveOrderLimit": 10000,
            "filters": [
                {
                    "filterType": "PRICE_FILTER",
                    "minPrice": self.min_price,
                    "maxPrice": self.max_price,
                    "tickSize": self.tick_size,
                },
                {
                    "filterType": "LOT_SIZE",
                    "stepSize": self.step_size,
                    "maxQty": self.max_qty,
                    "minQty": self.min_qty,
                },
                {
                    "filterType": "MARKET_LOT_SIZE",
                    "stepSize": self.step_size,
                    "maxQty": self.market_max_qty,
                    "minQty": self.min_qty,
                },
                {"filterType": "MAX_NUM_ORDERS", "limit": 200},
                {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
                {"filterType": "MIN_NOTIONAL", "notional": self.min_notional},
                {
                    "filterType": "PERCENT_PRICE",
                    "multiplierUp": "1.0500",
                    "multiplierDown": "0.9500",
                    "multiplierDecimal": "4",
                },
            ],
            "orderTypes": [
                "LIMIT",
                "MARKET",
                "STOP",
                "STOP_MARKET",
                "TAKE_PROFIT",
                "TAKE_PROFIT_MARKET",
                "TRAILING_STOP_MARKET",
            ],
            "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
        }


# Binance's BTCUSDT USDT-M filters; tick and step are the simulated market's.
BTCUSDT = SymbolSpec(
    symbol="BTCUSDT",
    base="BTC",
    quote="USDT",
    tick_size="0.10",
    step_size="0.001",
    min_price="556.80",
    max_price="4529764",
    min_qty="0.001",
    max_qty="1000",
    market_max_qty="120",
    min_notional="100",
    price_precision=2,
    quantity_precision=3,
)
assert Decimal(str(PRICE_TICK)) == BTCUSDT.tick and Decimal(str(SIZE_STEP)) == BTCUSDT.step


def parse_decimal(text: str | None, name: str) -> Decimal:
    """A finite decimal parameter, or -1102 naming it (how Binance reports bad numbers)."""
    if text is None or text == "":
        raise missing(name)
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise missing(name) from None
    if not value.is_finite():
        raise missing(name)
    return value


def parse_int(text: str | None, name: str) -> int:
    """An integer parameter, or -1102 naming it."""
    if text is None or text == "":
        raise missing(name)
    try:
        return int(text)
    except ValueError:
        raise missing(name) from None


def _decimals(text: str) -> int:
    return len(text.split(".")[1]) if "." in text else 0


def _exponent_digits(value: Decimal) -> int:
    """Significant decimals of ``value`` ("1.500" → 1): trailing zeros do not count."""
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def exchange_info(specs: list[SymbolSpec], server_time_ms: int) -> dict[str, object]:
    """The whole ``GET /fapi/v1/exchangeInfo`` body."""
    return {
        "timezone": "UTC",
        "serverTime": server_time_ms,
        "futuresType": "U_MARGINED",
        "rateLimits": [
            {
                "rateLimitType": "REQUEST_WEIGHT",
                "interval": "MINUTE",
                "intervalNum": 1,
                "limit": 2400,
            },
            {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 300},
        ],
        "exchangeFilters": [],
        "assets": [{"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "-10000"}],
        "symbols": [spec.exchange_info_symbol() for spec in specs],
    }


__all__ = ["BTCUSDT", "BinanceError", "SymbolSpec", "exchange_info", "parse_decimal", "parse_int"]

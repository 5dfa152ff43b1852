"""The one instrument the simulated venue lists: a Binance-like BTCUSDT perpetual.

The identifiers deliberately use the real ``BINANCE`` venue so strategy configs,
the sandbox execution client and the live adapter all agree on instrument ids;
switching between paper and live then changes only the node's clients.
"""

from __future__ import annotations

from decimal import Decimal

from nautilus_trader.model.currencies import BTC, USDT
from nautilus_trader.model.data import BarType
from nautilus_trader.model.identifiers import InstrumentId, Symbol, Venue
from nautilus_trader.model.instruments import CryptoPerpetual
from nautilus_trader.model.objects import Money, Price, Quantity

from hedgegrid_ops.venues.sim.listing import SIM_INSTRUMENT

SIM_VENUE_NAME = "BINANCE"
SIM_VENUE = Venue(SIM_VENUE_NAME)
SIM_INSTRUMENT_ID = InstrumentId.from_str(SIM_INSTRUMENT)
BAR_TYPE = BarType.from_str("BTCUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL")


def make_btcusdt_perp() -> CryptoPerpetual:
    """Build the instrument with Binance USDT-M filters and default VIP-0 fees.

    Margins are 20x initial / 40x maintenance, a conservative stand-in for
    Binance's tiered brackets at small notional.
    """
    return CryptoPerpetual(
        instrument_id=SIM_INSTRUMENT_ID,
        raw_symbol=Symbol("BTCUSDT"),
        base_currency=BTC,
        quote_currency=USDT,
        settlement_currency=USDT,
        is_inverse=False,
        price_precision=1,
        size_precision=3,
        price_increment=Price.from_str("0.1"),
        size_increment=Quantity.from_str("0.001"),
        ts_event=0,
        ts_init=0,
        max_quantity=Quantity.from_str("1000.000"),
        min_quantity=Quantity.from_str("0.001"),
        max_notional=None,
        min_notional=Money(100, USDT),
        max_price=Price.from_str("1000000.0"),
        min_price=Price.from_str("0.1"),
        margin_init=Decimal("0.05"),
        margin_maint=Decimal("0.025"),
        maker_fee=Decimal("0.0002"),
        taker_fee=Decimal("0.0005"),
    )

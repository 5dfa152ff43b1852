"""MarketState: the latest prices and funding terms the strategy has seen.

Updated by the strategy's market-data handlers; read by the grid, the flatten
and the snapshot. No orders, no Nautilus objects kept: just numbers.
"""

from __future__ import annotations

from decimal import Decimal

from nautilus_trader.model.data import FundingRateUpdate, MarkPriceUpdate, QuoteTick


class MarketState:
    """Top of book, mark price and funding, as of the last event."""

    def __init__(self) -> None:
        self.bid: Decimal | None = None
        self.ask: Decimal | None = None
        self.mark_price: Decimal | None = None
        self.funding_rate = 0.0
        self.next_funding_ns: int | None = None
        self.funding_interval_hours = 8.0

    def on_quote(self, tick: QuoteTick) -> None:
        self.bid = tick.bid_price.as_decimal()
        self.ask = tick.ask_price.as_decimal()

    def on_mark(self, update: MarkPriceUpdate) -> None:
        self.mark_price = update.value.as_decimal()

    def on_funding(self, update: FundingRateUpdate) -> None:
        self.funding_rate = float(update.rate)
        if update.interval:
            self.funding_interval_hours = update.interval / 60
        if update.next_funding_ns:
            self.next_funding_ns = int(update.next_funding_ns)

    def mid(self) -> Decimal | None:
        if self.bid is None or self.ask is None:
            return None
        return (self.bid + self.ask) / 2

    def reference_price(self) -> Decimal | None:
        """Mark price when the venue sends one, else mid: what inventory and PnL are valued at."""
        return self.mark_price or self.mid()

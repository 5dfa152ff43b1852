"""The adapter's USDT-M futures data client, plus funding rates and stream reports.

Binance sends the funding rate and the next funding time inside ``@markPrice``
messages; the 1.231 adapter turns them into ``BinanceFuturesMarkPriceUpdate``
custom data and leaves ``subscribe_funding_rates`` unimplemented. This client
also emits a standard ``FundingRateUpdate`` from each of them, so the strategy's
ordinary ``subscribe_funding_rates`` / ``on_funding_rate`` works the same in
paper and live mode, with no Binance import in the strategy.

It also reports market-stream reconnections on the message bus (the Rust
WebSocket client reconnects by itself and re-subscribes; we only say so).
"""

from __future__ import annotations

from decimal import Decimal

from nautilus_trader.adapters.binance.common.symbol import BinanceSymbol
from nautilus_trader.adapters.binance.futures.data import BinanceFuturesDataClient
from nautilus_trader.adapters.binance.futures.schemas.market import BinanceFuturesMarkPriceData
from nautilus_trader.data.messages import SubscribeFundingRates, UnsubscribeFundingRates
from nautilus_trader.model.data import FundingRateUpdate
from nautilus_trader.model.identifiers import InstrumentId

from hedgegrid_ops.venue_events import CONNECTIVITY_TOPIC, ConnectivityEvent

BINANCE_FUNDING_INTERVAL_MINUTES = 480  # 8 h, the USDT-M default


class HedgegridBinanceFuturesDataClient(BinanceFuturesDataClient):
    """``BinanceFuturesDataClient`` that also publishes ``FundingRateUpdate``."""

    def _handle_mark_price_data(self, data: BinanceFuturesMarkPriceData) -> None:
        super()._handle_mark_price_data(data)
        instrument_id: InstrumentId = self._get_cached_instrument_id(data.s)
        ts_init = self._clock.timestamp_ns()
        self._handle_data(
            FundingRateUpdate(
                instrument_id,
                Decimal(data.r),
                data.E * 1_000_000,
                ts_init,
                interval=BINANCE_FUNDING_INTERVAL_MINUTES,
                next_funding_ns=data.T * 1_000_000,
            )
        )

    async def _subscribe_funding_rates(self, command: SubscribeFundingRates) -> None:
        # Funding comes with the mark price stream: subscribe to it unless it is carried.
        symbol = command.instrument_id.symbol.value
        if f"{BinanceSymbol(symbol).lower()}@markPrice@1s" not in self._ws_client.subscriptions:
            await self._ws_client.subscribe_mark_price(symbol, speed=1000)

    async def _unsubscribe_funding_rates(self, command: UnsubscribeFundingRates) -> None:
        # The mark price subscription carries it; leave that stream to its own owner.
        return None

    async def _reconnect(self) -> None:
        # Called once the Rust client has reconnected: the drop itself is only known now.
        # Reported as a failure (health holds it briefly) followed by the recovery.
        now = self._clock.timestamp_ns()
        for up, detail in (
            (False, "market data stream dropped; reconnected, re-subscribing"),
            (True, "market data stream reconnected and re-subscribed"),
        ):
            self._msgbus.publish(
                CONNECTIVITY_TOPIC, ConnectivityEvent("market_stream", up, detail, now)
            )
        await super()._reconnect()

"""A probe TradingNode wired to the local exchange through Nautilus's own Binance adapter.

Used by child interpreters (``python -m tests.integration.test_exchange_*``): the
adapter is configured exactly as for Binance except URLs, key and secret, and a
scenario coroutine drives the probe strategy on the node's loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from nautilus_trader.adapters.binance import (
    BinanceAccountType,
    BinanceDataClientConfig,
    BinanceExecClientConfig,
    BinanceFuturesMarkPriceUpdate,
    BinanceLiveDataClientFactory,
    BinanceLiveExecClientFactory,
)
from nautilus_trader.config import (
    InstrumentProviderConfig,
    LiveExecEngineConfig,
    LoggingConfig,
    StrategyConfig,
    TradingNodeConfig,
)
from nautilus_trader.live.node import TradingNode
from nautilus_trader.model.data import Bar, BarType, DataType
from nautilus_trader.model.events import OrderRejected
from nautilus_trader.model.identifiers import ClientId, InstrumentId, PositionId, TraderId
from nautilus_trader.trading.strategy import Strategy

from tests.exchange_support import API_KEY, API_SECRET

IID = InstrumentId.from_str("BTCUSDT-PERP.BINANCE")
BAR_TYPE = BarType.from_str("BTCUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL")
LONG_ID = PositionId(f"{IID}-LONG")
SHORT_ID = PositionId(f"{IID}-SHORT")
# How long a scenario waits for an order event: liveness only, generous because the
# machine running the suite may be heavily shared (no speed is asserted).
EVENT_TIMEOUT = 30.0


@dataclass
class Seen:
    """What the probe observed; written on the loop thread, read by the scenario."""

    counts: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(("quote", "trade", "bar", "mark", "funding"), 0)
    )
    history_bars: list[int] = field(default_factory=list)
    funding_rates: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    rejections: list[dict[str, Any]] = field(default_factory=list)


class Probe(Strategy):
    """Subscribes to everything the exchange streams and records events."""

    def __init__(self, seen: Seen) -> None:
        super().__init__(StrategyConfig(strategy_id="ExchangeProbe-001", oms_type="HEDGING"))
        self.seen = seen

    def on_start(self) -> None:
        self.subscribe_quote_ticks(IID)
        self.subscribe_trade_ticks(IID)
        self.subscribe_bars(BAR_TYPE)
        self.subscribe_mark_prices(IID)
        self.subscribe_data(
            DataType(BinanceFuturesMarkPriceUpdate, metadata={"instrument_id": IID}),
            client_id=ClientId("BINANCE"),
        )

    def on_quote_tick(self, tick) -> None:
        self.seen.counts["quote"] += 1

    def on_trade_tick(self, tick) -> None:
        self.seen.counts["trade"] += 1

    def on_bar(self, bar) -> None:
        self.seen.counts["bar"] += 1

    def on_historical_data(self, data) -> None:
        if isinstance(data, Bar):
            self.seen.history_bars.append(data.ts_event)

    def on_mark_price(self, update) -> None:
        self.seen.counts["mark"] += 1

    def on_data(self, data) -> None:
        if isinstance(data, BinanceFuturesMarkPriceUpdate):
            self.seen.counts["funding"] += 1
            self.seen.funding_rates.append(str(data.funding_rate))

    def on_event(self, event) -> None:
        self.seen.events.append(type(event).__name__)
        if isinstance(event, OrderRejected):
            self.seen.rejections.append(
                {"reason": event.reason, "due_post_only": event.due_post_only}
            )


def node_config(rest_url: str, ws_url: str) -> TradingNodeConfig:
    """Binance USDT-M in hedge mode; only URLs, key and secret point at the local exchange."""
    common: dict[str, Any] = dict(
        api_key=API_KEY,
        api_secret=API_SECRET,
        account_type=BinanceAccountType.USDT_FUTURES,
        base_url_http=rest_url,
        base_url_ws=ws_url,
        instrument_provider=InstrumentProviderConfig(load_ids=frozenset([IID])),
    )
    return TradingNodeConfig(
        trader_id=TraderId("EXCHANGE-001"),
        logging=LoggingConfig(log_level="WARNING"),
        exec_engine=LiveExecEngineConfig(reconciliation=True),
        data_clients={"BINANCE": BinanceDataClientConfig(**common)},
        exec_clients={
            "BINANCE": BinanceExecClientConfig(
                **common, base_url_ws_stream=ws_url, use_reduce_only=False
            )
        },
        timeout_connection=20.0,
        timeout_post_stop=1.0,
    )


async def wait_for(cond: Callable[[], bool], timeout: float, what: str, seen: Seen) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; events={seen.events[-40:]}")
        await asyncio.sleep(0.05)


Scenario = Callable[[Probe, Seen], Awaitable[dict[str, Any]]]


def run_scenario(rest_url: str, ws_url: str, scenario: Scenario) -> dict[str, Any]:
    """Build and run the node, wait for quotes, run ``scenario``, stop, dispose."""
    holder: dict[str, Any] = {}
    seen = Seen()

    async def main() -> dict[str, Any]:
        node = TradingNode(config=node_config(rest_url, ws_url), loop=asyncio.get_running_loop())
        holder["node"] = node
        probe = Probe(seen)
        node.trader.add_strategy(probe)
        node.add_data_client_factory("BINANCE", BinanceLiveDataClientFactory)
        node.add_exec_client_factory("BINANCE", BinanceLiveExecClientFactory)
        node.build()
        run = asyncio.get_running_loop().create_task(node.run_async())
        try:
            await wait_for(lambda: seen.counts["quote"] >= 3, 30, "quotes", seen)
            return await scenario(probe, seen)
        finally:
            await node.stop_async()
            await asyncio.sleep(0.2)
            run.cancel()

    result = asyncio.run(main())
    holder["node"].dispose()  # only valid once the loop has finished
    return result

"""Factories that build our Binance USDT-M clients inside a TradingNode.

Register both under the ``BINANCE`` key (``node.add_*_client_factory``). They
differ from the adapter's own factories in three ways only: keys are read here
from the environment (never stored in a config), the HTTP client is the
monitored one with a request timeout, and the client classes are the thin
subclasses in ``data`` / ``execution``. Data and exec share one HTTP client and
one instrument provider, so exchangeInfo is fetched once.
"""

from __future__ import annotations

import asyncio
from functools import lru_cache

from nautilus_trader.adapters.binance.common.enums import BinanceAccountType, BinanceEnvironment
from nautilus_trader.adapters.binance.common.urls import (
    get_http_base_url,
    get_usdm_ws_route_base_url,
    get_ws_base_url,
    get_ws_public_base_url,
)
from nautilus_trader.adapters.binance.factories import (
    get_cached_binance_futures_instrument_provider,
)
from nautilus_trader.adapters.binance.futures.providers import BinanceFuturesInstrumentProvider
from nautilus_trader.cache.cache import Cache
from nautilus_trader.common.component import LiveClock, MessageBus
from nautilus_trader.core.nautilus_pyo3 import Quota
from nautilus_trader.live.factories import LiveDataClientFactory, LiveExecClientFactory

from hedgegrid_ops.venue_events import CONNECTIVITY_TOPIC
from hedgegrid_ops.venues.binance_live.config import (
    HedgegridBinanceDataClientConfig,
    HedgegridBinanceExecClientConfig,
)
from hedgegrid_ops.venues.binance_live.credentials import load_credentials
from hedgegrid_ops.venues.binance_live.data import HedgegridBinanceFuturesDataClient
from hedgegrid_ops.venues.binance_live.execution import HedgegridBinanceFuturesExecutionClient
from hedgegrid_ops.venues.binance_live.http import MonitoredBinanceHttpClient

_ACCOUNT = BinanceAccountType.USDT_FUTURES
# Binance's USDT-M request-weight budget (per minute) and order-rate limits.
_QUOTAS = [
    ("binance:global", Quota.rate_per_minute(2400)),
    ("binance:fapi/v1/order", Quota.rate_per_minute(1200)),
]


@lru_cache(1)
def _http_client(
    clock: LiveClock,
    msgbus: MessageBus,
    key_environment: str,
    environment: BinanceEnvironment,
    base_url: str | None,
    timeout: float,
) -> MonitoredBinanceHttpClient:
    creds = load_credentials(key_environment)

    def report(event: object) -> None:
        msgbus.publish(CONNECTIVITY_TOPIC, event)

    return MonitoredBinanceHttpClient(
        clock=clock,
        api_key=creds.api_key,
        api_secret=creds.api_secret,
        base_url=base_url or get_http_base_url(_ACCOUNT, environment, False),
        ratelimiter_quotas=_QUOTAS,
        ratelimiter_default_quota=_QUOTAS[0][1],
        timeout=timeout,
        on_connectivity=report,
    )


AnyConfig = HedgegridBinanceDataClientConfig | HedgegridBinanceExecClientConfig


def _shared(
    config: AnyConfig, clock: LiveClock, msgbus: MessageBus
) -> tuple[BinanceEnvironment, MonitoredBinanceHttpClient, BinanceFuturesInstrumentProvider]:
    """The environment, and the HTTP client and instrument provider both clients share."""
    environment = config.environment or BinanceEnvironment.LIVE
    client = _http_client(
        clock,
        msgbus,
        config.key_environment,
        environment,
        config.base_url_http,
        config.rest_timeout,
    )
    provider = get_cached_binance_futures_instrument_provider(
        client=client,
        clock=clock,
        account_type=_ACCOUNT,
        config=config.instrument_provider,
        venue=config.venue,
    )
    return environment, client, provider


class HedgegridBinanceDataClientFactory(LiveDataClientFactory):
    """Builds ``HedgegridBinanceFuturesDataClient`` from ``HedgegridBinanceDataClientConfig``."""

    @staticmethod
    def create(  # type: ignore[override]
        loop: asyncio.AbstractEventLoop,
        name: str,
        config: HedgegridBinanceDataClientConfig,
        msgbus: MessageBus,
        cache: Cache,
        clock: LiveClock,
    ) -> HedgegridBinanceFuturesDataClient:
        environment, client, provider = _shared(config, clock, msgbus)
        if config.base_url_ws is not None:
            market = get_usdm_ws_route_base_url(config.base_url_ws, "market")
            public = get_usdm_ws_route_base_url(config.base_url_ws, "public")
        else:
            market = get_ws_base_url(_ACCOUNT, environment, False)
            public = get_ws_public_base_url(_ACCOUNT, environment, False)
        return HedgegridBinanceFuturesDataClient(
            loop=loop,
            client=client,
            msgbus=msgbus,
            cache=cache,
            clock=clock,
            instrument_provider=provider,
            account_type=_ACCOUNT,
            base_url_ws=market,
            name=name,
            config=config,
            base_url_ws_public=public,
        )


class HedgegridBinanceExecClientFactory(LiveExecClientFactory):
    """Builds ``HedgegridBinanceFuturesExecutionClient`` from its config."""

    @staticmethod
    def create(  # type: ignore[override]
        loop: asyncio.AbstractEventLoop,
        name: str,
        config: HedgegridBinanceExecClientConfig,
        msgbus: MessageBus,
        cache: Cache,
        clock: LiveClock,
    ) -> HedgegridBinanceFuturesExecutionClient:
        creds = load_credentials(config.key_environment)
        environment, client, provider = _shared(config, clock, msgbus)
        return HedgegridBinanceFuturesExecutionClient(
            loop=loop,
            client=client,
            msgbus=msgbus,
            cache=cache,
            clock=clock,
            instrument_provider=provider,
            base_url_ws=config.base_url_ws or get_ws_base_url(_ACCOUNT, environment, False),
            account_type=_ACCOUNT,
            name=name,
            config=config,
            environment=environment,
            api_key=creds.api_key,
            api_secret=creds.api_secret,
        )

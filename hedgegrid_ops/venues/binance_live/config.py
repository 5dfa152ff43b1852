"""Turn a validated ``BinanceVenueConfig`` into the adapter's data and exec client configs.

The client configs never carry keys: our factories read them from the environment
when the node builds the clients (``credentials.load_credentials``), so the
configs can be logged, repr'd or dumped by Nautilus without leaking anything.

Hedge mode needs ``use_reduce_only=False`` (the adapter refuses reduce-only in a
dual-side account) and position ids ending in LONG/SHORT, which the strategy uses.
"""

from __future__ import annotations

from nautilus_trader.adapters.binance.common.enums import BinanceAccountType, BinanceEnvironment
from nautilus_trader.adapters.binance.common.symbol import BinanceSymbol
from nautilus_trader.adapters.binance.config import (
    BinanceDataClientConfig,
    BinanceExecClientConfig,
)
from nautilus_trader.adapters.binance.futures.enums import BinanceFuturesMarginType
from nautilus_trader.config import InstrumentProviderConfig
from nautilus_trader.model.identifiers import InstrumentId

from hedgegrid_ops.config import BinanceVenueConfig

CLIENT_KEY = "BINANCE"

# The local exchange is addressed by explicit URLs; LIVE keeps the adapter from
# rewriting them (it only rewrites fstream.binance.* hosts) and from guessing.
_NAUTILUS_ENVIRONMENT = {
    "live": BinanceEnvironment.LIVE,
    "testnet": BinanceEnvironment.TESTNET,
    "demo": BinanceEnvironment.DEMO,
    "local": BinanceEnvironment.LIVE,
}
_MARGIN_TYPE = {
    "cross": BinanceFuturesMarginType.CROSS,
    "isolated": BinanceFuturesMarginType.ISOLATED,
}

# Retried by the adapter (only these codes are retryable there): -1001 disconnected,
# -1003 too many requests (HTTP 429), -1007 timeout, -1021 timestamp outside recvWindow.
SUBMIT_RETRIES = 3
RETRY_DELAY_INITIAL_MS = 500
RETRY_DELAY_MAX_MS = 5_000


class HedgegridBinanceDataClientConfig(BinanceDataClientConfig, frozen=True):
    """The adapter's data config plus which environment's key variables to read."""

    key_environment: str = "live"
    rest_timeout: float = 10.0


class HedgegridBinanceExecClientConfig(BinanceExecClientConfig, frozen=True):
    """The adapter's exec config plus which environment's key variables to read."""

    key_environment: str = "live"
    rest_timeout: float = 10.0


def _provider(venue: BinanceVenueConfig) -> InstrumentProviderConfig:
    return InstrumentProviderConfig(
        load_ids=frozenset(InstrumentId.from_str(i) for i in venue.instruments)
    )


def _symbols(venue: BinanceVenueConfig) -> list[BinanceSymbol]:
    return [BinanceSymbol(InstrumentId.from_str(i).symbol.value) for i in venue.instruments]


def data_client_config(venue: BinanceVenueConfig) -> HedgegridBinanceDataClientConfig:
    urls = venue.urls
    return HedgegridBinanceDataClientConfig(
        account_type=BinanceAccountType.USDT_FUTURES,
        environment=_NAUTILUS_ENVIRONMENT[venue.environment],
        base_url_http=urls.http if urls else None,
        base_url_ws=urls.ws_market if urls else None,
        instrument_provider=_provider(venue),
        key_environment=venue.environment,
        rest_timeout=venue.rest_timeout_seconds,
    )


def exec_client_config(venue: BinanceVenueConfig) -> HedgegridBinanceExecClientConfig:
    urls = venue.urls
    symbols = _symbols(venue)
    return HedgegridBinanceExecClientConfig(
        account_type=BinanceAccountType.USDT_FUTURES,
        environment=_NAUTILUS_ENVIRONMENT[venue.environment],
        base_url_http=urls.http if urls else None,
        base_url_ws_stream=urls.ws_user if urls else None,
        instrument_provider=_provider(venue),
        use_reduce_only=False,
        use_position_ids=True,
        futures_leverages={s: venue.account.leverage for s in symbols},
        futures_margin_types={s: _MARGIN_TYPE[venue.account.margin_type] for s in symbols},
        max_retries=SUBMIT_RETRIES,
        retry_delay_initial_ms=RETRY_DELAY_INITIAL_MS,
        retry_delay_max_ms=RETRY_DELAY_MAX_MS,
        key_environment=venue.environment,
        rest_timeout=venue.rest_timeout_seconds,
    )

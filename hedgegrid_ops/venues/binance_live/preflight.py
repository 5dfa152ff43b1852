"""Account checks before a live node is built: reachable, keys accepted, hedge mode on.

Run on the event loop before anything trades. Each failure becomes one sentence
for the operator (``PreflightError``), never a traceback and never a key. The
position mode is read, never changed: switching it moves how every existing
position is booked, which must be the account owner's decision.
"""

from __future__ import annotations

from nautilus_trader.adapters.binance.common.enums import BinanceAccountType
from nautilus_trader.adapters.binance.futures.http.account import BinanceFuturesAccountHttpAPI
from nautilus_trader.adapters.binance.http.error import BinanceError
from nautilus_trader.common.component import LiveClock

from hedgegrid_ops.config import BinanceVenueConfig
from hedgegrid_ops.venues.binance_live.config import _NAUTILUS_ENVIRONMENT
from hedgegrid_ops.venues.binance_live.credentials import ApiCredentials
from hedgegrid_ops.venues.binance_live.http import MonitoredBinanceHttpClient

PREFLIGHT_TIMEOUT = 15.0

HEDGE_MODE_HELP = (
    "the Binance account is in one-way position mode, and HedgeGridV1 needs hedge mode "
    "(dualSidePosition=true). Switch it yourself with no open positions or orders: in the "
    "Binance Futures app, Preferences -> Position Mode -> Hedge Mode, or with "
    "POST /fapi/v1/positionSide/dual?dualSidePosition=true. This program never changes it."
)


class PreflightError(Exception):
    """The account cannot be traded as configured; the message is one sentence."""


def _binance_reason(exc: BinanceError) -> str:
    if isinstance(exc.message, dict):
        return f"code {exc.message.get('code')}: {exc.message.get('msg')}"
    return f"HTTP {exc.status}"


async def check_account(venue: BinanceVenueConfig, creds: ApiCredentials) -> None:
    """Raise ``PreflightError`` unless the keys work and the account is in hedge mode."""
    from nautilus_trader.adapters.binance.common.urls import get_http_base_url

    environment = _NAUTILUS_ENVIRONMENT[venue.environment]
    base_url = (
        venue.urls.http
        if venue.urls
        else get_http_base_url(BinanceAccountType.USDT_FUTURES, environment, False)
    )
    clock = LiveClock()
    client = MonitoredBinanceHttpClient(
        clock=clock,
        api_key=creds.api_key,
        api_secret=creds.api_secret,
        base_url=base_url,
        timeout=PREFLIGHT_TIMEOUT,
    )
    account = BinanceFuturesAccountHttpAPI(client, clock, BinanceAccountType.USDT_FUTURES)
    try:
        info = await account.query_futures_account_info(recv_window="5000")
        mode = await account.query_futures_hedge_mode(recv_window="5000")
    except BinanceError as exc:
        code = exc.message.get("code") if isinstance(exc.message, dict) else None
        if code in (-2014, -2015, -1022):
            raise PreflightError(
                f"Binance ({base_url}) refused the API key or its signature "
                f"({_binance_reason(exc)}): check the key variables and the key's permissions"
            ) from None
        raise PreflightError(
            f"Binance ({base_url}) answered the account check with an error "
            f"({_binance_reason(exc)})"
        ) from None
    except TimeoutError:
        raise PreflightError(
            f"no answer from Binance at {base_url} within {PREFLIGHT_TIMEOUT:g}s"
        ) from None
    except Exception as exc:  # transport errors from the Rust HTTP client
        raise PreflightError(
            f"cannot reach Binance at {base_url}: {type(exc).__name__}: {exc}"
        ) from None
    if not info.canTrade:
        raise PreflightError("the Binance API key has no futures trading permission")
    if not mode.dualSidePosition:
        raise PreflightError(HEDGE_MODE_HELP)

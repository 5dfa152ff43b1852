"""The adapter's HTTP client with a request timeout and reachability reports.

NautilusTrader 1.231's Binance HTTP client has no request timeout: a venue that
stops answering hangs the calling coroutine for ever (an order would stay
SUBMITTED with nothing to resolve it). Here every request is bounded; a timeout
surfaces like a dropped connection (a plain ``TimeoutError``, not a Binance error
code), so the adapter does not blindly re-send an order that may have arrived,
and the execution engine's in-flight check queries the order and resolves it.

Reachability: HTTP 5xx, 429/418 (rate limited or banned), transport errors and
timeouts mark REST as down; any answer that is not one of those marks it up.
Every failure is published (the monitor keeps /health degraded for a few seconds
after the last one); a success only when it ends a run of failures.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from nautilus_trader.adapters.binance.http.client import BinanceHttpClient
from nautilus_trader.adapters.binance.http.error import BinanceError
from nautilus_trader.core.nautilus_pyo3 import HttpMethod

from hedgegrid_ops.venue_events import ConnectivityEvent

DEFAULT_TIMEOUT = 10.0
_UNAVAILABLE_STATUSES = frozenset({418, 429})


def _describe(exc: BaseException, method: str, path: str) -> str:
    if isinstance(exc, BinanceError):
        code = exc.message.get("code") if isinstance(exc.message, dict) else None
        suffix = f" (code {code})" if code is not None else ""
        return f"{method} {path} answered HTTP {exc.status}{suffix}"
    if isinstance(exc, TimeoutError):
        return f"{method} {path} got no answer in time"
    return f"{method} {path} failed: {type(exc).__name__}"


class MonitoredBinanceHttpClient(BinanceHttpClient):
    """``BinanceHttpClient`` + per-request timeout + REST up/down events."""

    def __init__(
        self,
        *args: object,
        timeout: float = DEFAULT_TIMEOUT,
        on_connectivity: Callable[[ConnectivityEvent], None] | None = None,
        **kwargs: object,
    ) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.timeout = timeout
        self.on_connectivity = on_connectivity
        self._rest_up: bool | None = None

    async def send_request(
        self,
        http_method: HttpMethod,
        url_path: str,
        payload: dict[str, str] | None = None,
        ratelimiter_keys: list[str] | None = None,
    ) -> bytes:
        path = url_path.split("?", 1)[0]
        method = str(http_method).rsplit(".", 1)[-1].upper()
        try:
            async with asyncio.timeout(self.timeout):
                body = await super().send_request(
                    http_method, url_path, payload=payload, ratelimiter_keys=ratelimiter_keys
                )
        except TimeoutError as exc:
            self._report(False, _describe(exc, method, path))
            raise TimeoutError(
                f"{method} {path}: no answer from the venue within {self.timeout:g}s"
            ) from None
        except BinanceError as exc:
            down = exc.status >= 500 or exc.status in _UNAVAILABLE_STATUSES
            self._report(not down, _describe(exc, method, path) if down else "answering")
            raise
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # transport errors (nautilus_pyo3.HttpError, ...)
            self._report(False, _describe(exc, method, path))
            raise
        self._report(True, "answering")
        return body

    def _report(self, up: bool, detail: str) -> None:
        if self.on_connectivity is None or (up and self._rest_up is not False):
            self._rest_up = up
            return
        self._rest_up = up
        self.on_connectivity(ConnectivityEvent("rest", up, detail, self._clock.timestamp_ns()))

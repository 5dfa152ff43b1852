"""Python clients for the hedgegrid control API: one blocking, one asyncio.

Operators script the API from cron jobs, notebooks and the ``hedgegrid_ops`` CLI, where
pulling in an HTTP library is a cost, so ``HedgeGridClient`` uses only ``urllib``. Bots
that already run an event loop use ``AsyncHedgeGridClient`` (aiohttp) and never block it.

Answers are decoded into the very Structs the server encodes (``hedgegrid_ops.api``):
``client.get_status().pnl.total``, typed and checked on arrival. Decoding is tolerant of
fields a newer server adds (they are ignored), strict about the ones declared here.

Every failure is a ``HedgeGridClientError``: ``HedgeGridAPIError`` when the server
answered with an error (its ``status``, ``error`` code and ``detail`` sentence), or with
a body that is not the promised shape, and ``HedgeGridConnectionError`` when no answer
came back (refused, DNS, timeout). Callers can tell "the server said no" from "the
server is not there", which is exactly the difference between exit codes 1 and 3 in
the CLI.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any, Self

import aiohttp
import msgspec

from hedgegrid_ops.api import (
    EmptyRequest,
    Fills,
    FlattenRequest,
    FlattenResult,
    Health,
    Ladders,
    Orders,
    PnlDaily,
    Request,
    StartResult,
    Status,
    StopResult,
    ThrottleRequest,
    ThrottleResult,
)
from hedgegrid_ops.commands import FlattenSide

__all__ = [
    "AsyncHedgeGridClient",
    "HedgeGridAPIError",
    "HedgeGridClient",
    "HedgeGridClientError",
    "HedgeGridConnectionError",
]


# --------------------------------------------------------------------------- errors


class HedgeGridClientError(Exception):
    """Base of every error the clients raise."""


class HedgeGridAPIError(HedgeGridClientError):
    """The server answered, and the answer was an error (or not the JSON it promises)."""

    def __init__(self, status: int, error: str, detail: str, request_id: str | None = None):
        super().__init__(f"{detail} (HTTP {status} {error})")
        self.status = status
        self.error = error
        self.detail = detail
        self.request_id = request_id


class HedgeGridConnectionError(HedgeGridClientError):
    """No answer: the connection failed, broke off or timed out."""

    def __init__(self, url: str, reason: str):
        super().__init__(f"cannot reach {url}: {reason}")
        self.url = url
        self.reason = reason


# --------------------------------------------------------------------------- shared plumbing

_OK = frozenset({200})
# /health answers 503 with the same Health body when degraded or down: a monitor needs
# that body (status, reason), not an exception.
_HEALTH_OK = frozenset({200, 503})
_MAX_TEXT_IN_ERROR = 200


def _endpoint(base_url: str, path: str) -> str:
    return base_url.rstrip("/") + path


def _headers(api_key: str | None, has_body: bool) -> dict[str, str]:
    headers = {"Accept": "application/json"}
    if has_body:
        headers["Content-Type"] = "application/json"
    if api_key:
        headers["X-API-Key"] = api_key
    return headers


def fills_path(since: float | None = None, before: int | None = None, limit: int = 100) -> str:
    """``/fills`` with its query string (only the parameters given); the server validates."""
    params = {"since": since, "before": before, "limit": limit}
    query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
    return f"/fills?{query}"


def _encode(request: Request | None) -> bytes | None:
    return None if request is None else msgspec.json.encode(request)


def _decode[T](
    status: int, body: bytes, kind: type[T], ok: frozenset[int], request_id: str | None
) -> T:
    """Turn one HTTP answer into ``kind``, or raise the error it stands for."""
    problem = "(empty body)"
    if status in ok:
        try:
            return msgspec.json.decode(body, type=kind)
        except msgspec.DecodeError as exc:
            problem = str(exc)
    try:
        data = json.loads(body) if body else None
    except (ValueError, UnicodeDecodeError):
        data = None
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        detail = data.get("detail")
        raise HedgeGridAPIError(
            status,
            data["error"],
            detail if isinstance(detail, str) else data["error"],
            data.get("request_id") or request_id,
        )
    text = body[:_MAX_TEXT_IN_ERROR].decode("utf-8", "replace").strip()
    if status in ok:
        raise HedgeGridAPIError(
            status,
            "invalid_response",
            f"expected {kind.__name__} from the server ({problem}), got: {text or '(empty)'}",
            request_id,
        )
    raise HedgeGridAPIError(
        status, "http_error", f"HTTP {status}: {text or '(empty body)'}", request_id
    )


# --------------------------------------------------------------------------- blocking client


class HedgeGridClient:
    """Blocking client (standard library only). Safe to share between threads.

    Proxy variables (``http_proxy`` ...) are ignored on purpose: the control API is
    reached directly, and a proxy would see the API key.
    """

    def __init__(self, base_url: str, api_key: str | None = None, timeout: float = 10.0):
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def get_health(self) -> Health:
        """Health as the server sees it; returns the body for both 200 and 503."""
        return self._request("GET", "/health", Health, ok=_HEALTH_OK)

    def get_status(self) -> Status:
        return self._request("GET", "/status", Status)

    def get_ladders(self) -> Ladders:
        return self._request("GET", "/ladders", Ladders)

    def get_orders(self) -> Orders:
        return self._request("GET", "/orders", Orders)

    def get_fills(
        self, since: float | None = None, before: int | None = None, limit: int = 100
    ) -> Fills:
        """A page of the fill history, newest first (``next_before`` pages further back)."""
        return self._request("GET", fills_path(since, before, limit), Fills)

    def get_pnl_daily(self) -> PnlDaily:
        return self._request("GET", "/pnl/daily", PnlDaily)

    def start(self) -> StartResult:
        return self._request("POST", "/start", StartResult, EmptyRequest())

    def stop(self) -> StopResult:
        return self._request("POST", "/stop", StopResult, EmptyRequest())

    def flatten(self, side: FlattenSide = "both") -> FlattenResult:
        """Cancel orders and close ``side``'s positions at market; the server validates ``side``."""
        return self._request("POST", "/flatten", FlattenResult, FlattenRequest(side=side))

    def set_throttle(self, value: float) -> ThrottleResult:
        """Set aggressiveness, 0.0 (most passive) to 1.0; the server rejects other values."""
        return self._request(
            "POST", "/set-throttle", ThrottleResult, ThrottleRequest(throttle=value)
        )

    def _request[T](
        self,
        method: str,
        path: str,
        kind: type[T],
        payload: Request | None = None,
        ok: frozenset[int] = _OK,
    ) -> T:
        url = _endpoint(self.base_url, path)
        data = _encode(payload)
        request = urllib.request.Request(
            url, data=data, method=method, headers=_headers(self.api_key, data is not None)
        )
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                status = response.status
                body = response.read()
                request_id = response.headers.get("X-Request-ID")
        except urllib.error.HTTPError as exc:  # an answer, just not a 2xx one
            with exc:
                status, body = exc.code, exc.read()
                request_id = exc.headers.get("X-Request-ID") if exc.headers else None
        except urllib.error.URLError as exc:
            raise HedgeGridConnectionError(self.base_url, _reason(exc.reason)) from exc
        except (TimeoutError, OSError, http.client.HTTPException) as exc:
            raise HedgeGridConnectionError(self.base_url, _reason(exc)) from exc
        return _decode(status, body, kind, ok, request_id)


def _reason(exc: object) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


# --------------------------------------------------------------------------- asyncio client


class AsyncHedgeGridClient:
    """asyncio twin of ``HedgeGridClient`` on aiohttp; use it as an async context manager.

    ``async with AsyncHedgeGridClient(url) as client: await client.get_status()``.
    An existing ``aiohttp.ClientSession`` may be passed in; it is then not closed here.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        timeout: float = 10.0,
        session: aiohttp.ClientSession | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self._session = session
        self._owns_session = session is None

    async def __aenter__(self) -> Self:
        self._ensure_session()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def get_health(self) -> Health:
        """Health as the server sees it; returns the body for both 200 and 503."""
        return await self._request("GET", "/health", Health, ok=_HEALTH_OK)

    async def get_status(self) -> Status:
        return await self._request("GET", "/status", Status)

    async def get_ladders(self) -> Ladders:
        return await self._request("GET", "/ladders", Ladders)

    async def get_orders(self) -> Orders:
        return await self._request("GET", "/orders", Orders)

    async def get_fills(
        self, since: float | None = None, before: int | None = None, limit: int = 100
    ) -> Fills:
        return await self._request("GET", fills_path(since, before, limit), Fills)

    async def get_pnl_daily(self) -> PnlDaily:
        return await self._request("GET", "/pnl/daily", PnlDaily)

    async def start(self) -> StartResult:
        return await self._request("POST", "/start", StartResult, EmptyRequest())

    async def stop(self) -> StopResult:
        return await self._request("POST", "/stop", StopResult, EmptyRequest())

    async def flatten(self, side: FlattenSide = "both") -> FlattenResult:
        """Cancel orders and close ``side``'s positions at market; the server validates ``side``."""
        return await self._request("POST", "/flatten", FlattenResult, FlattenRequest(side=side))

    async def set_throttle(self, value: float) -> ThrottleResult:
        """Set aggressiveness, 0.0 (most passive) to 1.0; the server rejects other values."""
        return await self._request(
            "POST", "/set-throttle", ThrottleResult, ThrottleRequest(throttle=value)
        )

    def events(self) -> AsyncIterator[dict[str, Any]]:
        """The ``/events`` stream as dicts (``async for msg in client.events()``).

        Ends by raising ``client_stream.HedgeGridStreamClosed`` with the close code.
        """
        from hedgegrid_ops.client_stream import stream_events  # it imports this module

        # its own session: this client's total request timeout must not end a long stream
        return stream_events(self.base_url, self.api_key)

    def _ensure_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
            self._owns_session = True
        return self._session

    async def _request[T](
        self,
        method: str,
        path: str,
        kind: type[T],
        payload: Request | None = None,
        ok: frozenset[int] = _OK,
    ) -> T:
        session = self._ensure_session()
        data = _encode(payload)
        try:
            async with session.request(
                method,
                _endpoint(self.base_url, path),
                data=data,
                headers=_headers(self.api_key, data is not None),
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            ) as response:
                body = await response.read()
                status = response.status
                request_id = response.headers.get("X-Request-ID")
        except TimeoutError as exc:
            raise HedgeGridConnectionError(self.base_url, "timed out") from exc
        except aiohttp.ClientError as exc:
            raise HedgeGridConnectionError(self.base_url, _aiohttp_reason(exc)) from exc
        return _decode(status, body, kind, ok, request_id)


def _aiohttp_reason(exc: aiohttp.ClientError) -> str:
    if isinstance(exc, aiohttp.ClientConnectorError) and exc.os_error.strerror:
        return exc.os_error.strerror
    return str(exc) or type(exc).__name__

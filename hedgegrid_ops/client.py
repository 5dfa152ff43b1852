"""Python clients for the hedgegrid control API: one blocking, one asyncio.

Operators script the API from cron jobs, notebooks and the ``hedgegrid_ops`` CLI, where
pulling in an HTTP library is a cost, so ``HedgeGridClient`` uses only ``urllib``. Bots
that already run an event loop use ``AsyncHedgeGridClient`` (aiohttp) and never block it.

Results are the server's JSON objects as plain dicts, typed with ``TypedDict``s that
mirror the documented shapes, so both ``status["pnl"]["total"]`` and static type checks
work, and fields the server adds later are passed through rather than dropped.

Every failure is a ``HedgeGridClientError``: ``HedgeGridAPIError`` when the server
answered with an error (its ``status``, ``error`` code and ``detail`` sentence), and
``HedgeGridConnectionError`` when no answer came back (refused, DNS, timeout). Callers
can tell "the server said no" from "the server is not there", which is exactly the
difference between exit codes 1 and 3 in the CLI.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from types import TracebackType
from typing import Any, Literal, NotRequired, Self, TypedDict, cast

import aiohttp

__all__ = [
    "AsyncHedgeGridClient",
    "FlattenResponse",
    "FlattenSide",
    "HealthResponse",
    "HedgeGridAPIError",
    "HedgeGridClient",
    "HedgeGridClientError",
    "HedgeGridConnectionError",
    "LaddersResponse",
    "OrdersResponse",
    "StartResponse",
    "StatusResponse",
    "StopResponse",
    "ThrottleResponse",
]

FlattenSide = Literal["long", "short", "both"]


# --------------------------------------------------------------------------- response shapes


class HealthResponse(TypedDict):
    """GET /health. ``reason`` is present only when status is degraded or down (HTTP 503)."""

    status: str  # healthy | degraded | down
    uptime: float
    last_bar: float | None  # wall-clock unix seconds the last bar was processed
    trading_state: str
    bar_age_seconds: float | None
    reason: NotRequired[str]


class PositionSideInfo(TypedDict):
    inventory_usdt: float
    quantity: float
    entry_price: float
    unrealized_pnl: float


class Positions(TypedDict):
    long: PositionSideInfo
    short: PositionSideInfo


class PnL(TypedDict):
    realized: float
    unrealized: float
    total: float


class FundingInfo(TypedDict):
    rate: float
    next_funding_time: float | None
    cost_1h_projected_usdt: float
    scale_long: float
    scale_short: float


class CountersInfo(TypedDict):
    bars_processed: int
    orders_submitted_buy: int
    orders_submitted_sell: int
    orders_cancelled: int
    orders_rejected: int
    orders_denied: int
    orders_rejected_margin: int
    orders_rejected_post_only: int
    fills_buy_maker: int
    fills_buy_taker: int
    fills_sell_maker: int
    fills_sell_taker: int
    funding_payments: int
    funding_paid_usdt: float
    fees_paid_usdt: float
    flattens: int
    recenters: int


class StatusResponse(TypedDict):
    """GET /status: everything an operator may ask about, as of ``timestamp``."""

    running: bool
    trading_state: str
    state_reason: str
    instrument: str
    positions: Positions
    margin_ratio: float | None  # None: margin in use with no equity left
    open_orders: int
    pnl: PnL
    timestamp: float
    balance_usdt: float
    equity_usdt: float
    margin_used_usdt: float
    mid_price: float | None
    grid_center: float | None
    regime: str
    throttle: float
    maker_ratio: float
    funding: FundingInfo
    counters: CountersInfo
    uptime: float
    last_bar: float | None
    last_bar_event_time: float | None


class LadderRung(TypedDict):
    price: float
    qty: float
    rung: int
    client_order_id: str
    status: str


class LaddersResponse(TypedDict):
    timestamp: float
    mid_price: float | None
    grid_center: float | None
    throttle: float
    long_ladder: list[LadderRung]
    short_ladder: list[LadderRung]


class OrderInfo(TypedDict):
    client_order_id: str
    side: str  # BUY | SELL
    position_side: str  # LONG | SHORT
    role: str  # grid | take_profit | stop_loss | flatten
    rung: int | None
    order_type: str
    price: float | None
    trigger_price: float | None
    quantity: float
    filled_qty: float
    status: str


class OrdersResponse(TypedDict):
    orders: list[OrderInfo]
    count: int
    timestamp: float


class StartResponse(TypedDict):
    status: str  # started | already_running
    previous_state: str
    trading_state: str
    timestamp: float


class StopResponse(TypedDict):
    status: str  # stopped | already_stopped
    previous_state: str
    trading_state: str
    cancelled_orders: int
    timestamp: float


class FlattenResponse(TypedDict):
    status: str  # flattening
    side: str
    cancelled_orders: int
    closing_positions: list[str]  # sides that had a position and got a close order now
    already_closing: list[str]
    trading_state: str
    timestamp: float


class ThrottleResponse(TypedDict):
    status: str  # updated | unchanged
    new_throttle: float
    previous_throttle: float
    timestamp: float


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
# /health answers 503 with the same JSON shape when degraded or down: a monitor needs that
# body (status, reason), not an exception.
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


def _encode(payload: dict[str, Any] | None) -> bytes | None:
    return None if payload is None else json.dumps(payload).encode("utf-8")


def _decode(status: int, body: bytes, ok: frozenset[int], request_id: str | None) -> dict[str, Any]:
    """Turn one HTTP answer into the result dict, or raise the error it stands for."""
    try:
        data = json.loads(body) if body else None
    except (ValueError, UnicodeDecodeError):
        data = None
    # A 503 from /health still has the health shape ("status"); any other 503 is an error.
    if status in ok and isinstance(data, dict) and (status == 200 or "status" in data):
        return data
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
            f"expected a JSON object from the server, got: {text or '(empty body)'}",
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

    def get_health(self) -> HealthResponse:
        """Health as the server sees it; returns the body for both 200 and 503."""
        return cast(HealthResponse, self._request("GET", "/health", ok=_HEALTH_OK))

    def get_status(self) -> StatusResponse:
        return cast(StatusResponse, self._request("GET", "/status"))

    def get_ladders(self) -> LaddersResponse:
        return cast(LaddersResponse, self._request("GET", "/ladders"))

    def get_orders(self) -> OrdersResponse:
        return cast(OrdersResponse, self._request("GET", "/orders"))

    def start(self) -> StartResponse:
        return cast(StartResponse, self._request("POST", "/start"))

    def stop(self) -> StopResponse:
        return cast(StopResponse, self._request("POST", "/stop"))

    def flatten(self, side: FlattenSide | str = "both") -> FlattenResponse:
        """Cancel orders and close ``side``'s positions at market; the server validates ``side``."""
        return cast(FlattenResponse, self._request("POST", "/flatten", {"side": side}))

    def set_throttle(self, value: float) -> ThrottleResponse:
        """Set aggressiveness, 0.0 (most passive) to 1.0; the server rejects other values."""
        return cast(ThrottleResponse, self._request("POST", "/set-throttle", {"throttle": value}))

    def _request(
        self,
        method: str,
        path: str,
        payload: dict[str, Any] | None = None,
        ok: frozenset[int] = _OK,
    ) -> dict[str, Any]:
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
        return _decode(status, body, ok, request_id)


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

    async def get_health(self) -> HealthResponse:
        """Health as the server sees it; returns the body for both 200 and 503."""
        return cast(HealthResponse, await self._request("GET", "/health", ok=_HEALTH_OK))

    async def get_status(self) -> StatusResponse:
        return cast(StatusResponse, await self._request("GET", "/status"))

    async def get_ladders(self) -> LaddersResponse:
        return cast(LaddersResponse, await self._request("GET", "/ladders"))

    async def get_orders(self) -> OrdersResponse:
        return cast(OrdersResponse, await self._request("GET", "/orders"))

    async def start(self) -> StartResponse:
        return cast(StartResponse, await self._request("POST", "/start"))

    async def stop(self) -> StopResponse:
        return cast(StopResponse, await self._request("POST", "/stop"))

    async def flatten(self, side: FlattenSide | str = "both") -> FlattenResponse:
        """Cancel orders and close ``side``'s positions at market; the server validates ``side``."""
        return cast(FlattenResponse, await self._request("POST", "/flatten", {"side": side}))

    async def set_throttle(self, value: float) -> ThrottleResponse:
        """Set aggressiveness, 0.0 (most passive) to 1.0; the server rejects other values."""
        result = await self._request("POST", "/set-throttle", {"throttle": value})
        return cast(ThrottleResponse, result)

    def _ensure_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
            self._owns_session = True
        return self._session

    async def _request(
        self,
        method: str,
        path: str,
        payload: dict[str, Any] | None = None,
        ok: frozenset[int] = _OK,
    ) -> dict[str, Any]:
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
        return _decode(status, body, ok, request_id)


def _aiohttp_reason(exc: aiohttp.ClientError) -> str:
    if isinstance(exc, aiohttp.ClientConnectorError) and exc.os_error.strerror:
        return exc.os_error.strerror
    return str(exc) or type(exc).__name__

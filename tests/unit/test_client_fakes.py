"""A small real HTTP server speaking the control API contract, for the client tests.

Not the real service (integration tests cover that): an aiohttp app on an ephemeral
loopback port that answers with the contract's JSON shapes, enforces the API key,
validates bodies the way the contract says and keeps a little state (trading state,
throttle), so the clients, CLI and health script are tested over real sockets.
Holds no tests itself.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

INSTRUMENT = "BTCUSDT-PERP.BINANCE"
OPEN_PATHS = frozenset({"/health", "/metrics"})


@dataclass
class Recorded:
    method: str
    path: str
    headers: CIMultiDict[str]  # case-insensitive, as HTTP header names are
    body: bytes


@dataclass
class Canned:
    """A fixed answer for one route, replacing the fake's own behaviour."""

    status: int
    body: bytes
    content_type: str = "application/json"
    delay: float = 0.0


def dumps(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def health_body(
    status: str = "healthy",
    *,
    bar_age: float | None = 5.0,
    trading_state: str = "running",
    reason: str | None = None,
    include_bar_age: bool = True,
    now: float | None = None,
) -> dict[str, Any]:
    now = time.time() if now is None else now
    body: dict[str, Any] = {
        "status": status,
        "uptime": 3600.5,
        "last_bar": None if bar_age is None else now - bar_age,
        "trading_state": trading_state,
    }
    if include_bar_age:
        body["bar_age_seconds"] = bar_age
    if reason is not None:
        body["reason"] = reason
    return body


def status_body(trading_state: str = "running", throttle: float = 0.75) -> dict[str, Any]:
    now = time.time()
    return {
        "running": trading_state == "running",
        "trading_state": trading_state,
        "state_reason": "start by api",
        "instrument": INSTRUMENT,
        "positions": {
            "long": {
                "inventory_usdt": 1500.0,
                "quantity": 0.05,
                "entry_price": 30000.0,
                "unrealized_pnl": 50.25,
            },
            "short": {
                "inventory_usdt": 870.0,
                "quantity": 0.03,
                "entry_price": 29000.0,
                "unrealized_pnl": -20.5,
            },
        },
        "margin_ratio": 0.35,
        "open_orders": 2,
        "pnl": {"realized": 200.0, "unrealized": 29.75, "total": 229.75},
        "timestamp": now,
        "balance_usdt": 10000.0,
        "equity_usdt": 10029.75,
        "margin_used_usdt": 118.5,
        "mid_price": 30012.5,
        "grid_center": 30000.0,
        "regime": "sideways",
        "throttle": throttle,
        "maker_ratio": 0.975,
        "funding": {
            "rate": 0.0001,
            "next_funding_time": 1697241600.0,
            "cost_1h_projected_usdt": 0.08,
            "scale_long": 1.0,
            "scale_short": 0.8,
        },
        "counters": {
            "bars_processed": 61,
            "orders_submitted_buy": 12,
            "orders_submitted_sell": 10,
            "orders_cancelled": 4,
            "orders_rejected": 0,
            "orders_denied": 0,
            "fills_buy_maker": 7,
            "fills_buy_taker": 0,
            "fills_sell_maker": 5,
            "fills_sell_taker": 1,
            "funding_payments": 2,
            "funding_paid_usdt": 0.31,
            "flattens": 0,
            "recenters": 1,
        },
        "uptime": 3600.5,
        "last_bar": now - 5.0,
        "last_bar_event_time": now - 65.0,
    }


def ladders_body(throttle: float = 0.75) -> dict[str, Any]:
    return {
        "timestamp": time.time(),
        "mid_price": 30012.5,
        "grid_center": 30000.0,
        "throttle": throttle,
        "long_ladder": [
            {
                "price": 29900.0,
                "qty": 0.01,
                "rung": 0,
                "client_order_id": "O-L-0",
                "status": "OPEN",
            },
            {
                "price": 29800.0,
                "qty": 0.01,
                "rung": 1,
                "client_order_id": "O-L-1",
                "status": "OPEN",
            },
        ],
        "short_ladder": [
            {
                "price": 30100.0,
                "qty": 0.01,
                "rung": 0,
                "client_order_id": "O-S-0",
                "status": "OPEN",
            },
        ],
    }


def orders_body() -> dict[str, Any]:
    orders = [
        {
            "client_order_id": "O-L-0",
            "side": "BUY",
            "position_side": "LONG",
            "role": "grid",
            "rung": 0,
            "order_type": "LIMIT",
            "price": 29900.0,
            "trigger_price": None,
            "quantity": 0.01,
            "filled_qty": 0.0,
            "status": "ACCEPTED",
        },
        {
            "client_order_id": "O-TP-7",
            "side": "SELL",
            "position_side": "LONG",
            "role": "take_profit",
            "rung": None,
            "order_type": "LIMIT",
            "price": 30150.0,
            "trigger_price": None,
            "quantity": 0.05,
            "filled_qty": 0.02,
            "status": "PARTIALLY_FILLED",
        },
    ]
    return {"orders": orders, "count": len(orders), "timestamp": time.time()}


@dataclass
class FakeHedgeGrid:
    """``async with FakeHedgeGrid() as server: ... server.url ...``"""

    api_key: str | None = None
    trading_state: str = "running"
    throttle: float = 0.75
    positions: set[str] = field(default_factory=lambda: {"LONG", "SHORT"})
    canned: dict[tuple[str, str], Canned] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    url: str = ""
    _runner: web.AppRunner | None = None
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    async def __aenter__(self) -> FakeHedgeGrid:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_get("/health", self._health)
        app.router.add_get("/status", self._status)
        app.router.add_get("/ladders", self._ladders)
        app.router.add_get("/orders", self._orders)
        app.router.add_post("/start", self._start)
        app.router.add_post("/stop", self._stop)
        app.router.add_post("/flatten", self._flatten)
        app.router.add_post("/set-throttle", self._set_throttle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def can(self, method: str, path: str, status: int, body: Any, **kw: Any) -> None:
        """Answer ``method path`` with a fixed response (JSON unless ``body`` is bytes)."""
        raw = body if isinstance(body, bytes) else dumps(body)
        self.canned[(method, path)] = Canned(status, raw, **kw)

    # ------------------------------------------------------------------ plumbing

    def _error(self, status: int, code: str, detail: str, request_id: str) -> web.Response:
        body = {"error": code, "detail": detail, "request_id": request_id}
        return web.json_response(body, status=status)

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        request_id = f"req-{next(self._ids)}"
        body = await request.read()
        headers = CIMultiDict(request.headers)
        self.requests.append(Recorded(request.method, request.path, headers, body))
        canned = self.canned.get((request.method, request.path))
        if canned is not None:
            if canned.delay:
                await asyncio.sleep(canned.delay)
            response: web.StreamResponse = web.Response(
                status=canned.status, body=canned.body, content_type=canned.content_type
            )
        elif (
            self.api_key is not None
            and request.path not in OPEN_PATHS
            and request.headers.get("X-API-Key") != self.api_key
        ):
            response = self._error(401, "unauthorized", "missing or wrong X-API-Key", request_id)
        else:
            try:
                response = await handler(request)
            except web.HTTPNotFound:
                response = self._error(404, "not_found", f"no route {request.path}", request_id)
            except web.HTTPMethodNotAllowed:
                response = self._error(405, "method_not_allowed", "wrong method", request_id)
            except BadRequest as exc:
                response = self._error(400, exc.code, exc.detail, request_id)
        response.headers["X-Request-ID"] = request_id
        return response

    # ------------------------------------------------------------------ routes

    async def _health(self, request: web.Request) -> web.Response:
        if self.trading_state == "halted":
            body = health_body("down", trading_state="halted", reason="trading is halted")
            return web.json_response(body, status=503)
        return web.json_response(health_body(trading_state=self.trading_state))

    async def _status(self, request: web.Request) -> web.Response:
        return web.json_response(status_body(self.trading_state, self.throttle))

    async def _ladders(self, request: web.Request) -> web.Response:
        return web.json_response(ladders_body(self.throttle))

    async def _orders(self, request: web.Request) -> web.Response:
        return web.json_response(orders_body())

    async def _start(self, request: web.Request) -> web.Response:
        previous = self.trading_state
        if previous == "halted":
            return self._error(409, "conflict", "trading is halted", "req-x")
        status = "already_running" if previous == "running" else "started"
        self.trading_state = "running"
        return web.json_response(
            {
                "status": status,
                "previous_state": previous,
                "trading_state": self.trading_state,
                "timestamp": time.time(),
            }
        )

    async def _stop(self, request: web.Request) -> web.Response:
        previous = self.trading_state
        stopped = previous in {"running", "starting"}
        self.trading_state = "paused" if stopped else previous
        return web.json_response(
            {
                "status": "stopped" if stopped else "already_stopped",
                "previous_state": previous,
                "trading_state": self.trading_state,
                "cancelled_orders": 3 if stopped else 0,
                "timestamp": time.time(),
            }
        )

    async def _flatten(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        side = body.get("side")
        if side not in {"long", "short", "both"}:
            raise BadRequest("invalid_side", "side must be long, short or both")
        sides = {"long": ["LONG"], "short": ["SHORT"], "both": ["LONG", "SHORT"]}[side]
        closing = [s for s in sides if s in self.positions]
        self.positions -= set(closing)
        self.trading_state = "flattening"
        return web.json_response(
            {
                "status": "flattening",
                "side": side,
                "cancelled_orders": 2,
                "closing_positions": closing,
                "already_closing": [],
                "trading_state": self.trading_state,
                "timestamp": time.time(),
            }
        )

    async def _set_throttle(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        value = body.get("throttle")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise BadRequest("invalid_type", "throttle must be a number")
        if not 0.0 <= value <= 1.0:
            raise BadRequest("out_of_range", "throttle must be between 0.0 and 1.0")
        previous, self.throttle = self.throttle, float(value)
        return web.json_response(
            {
                "status": "unchanged" if previous == self.throttle else "updated",
                "new_throttle": self.throttle,
                "previous_throttle": previous,
                "timestamp": time.time(),
            }
        )


class BadRequest(Exception):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


async def json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.read())
    except ValueError:
        raise BadRequest("invalid_json", "the body is not JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("invalid_json", "the body must be a JSON object")
    return body


def unused_port() -> int:
    """A loopback port nothing listens on (bound then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])

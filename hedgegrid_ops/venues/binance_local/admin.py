"""Admin routes (``/admin/...``): fault injection and inspection for tests and rehearsals.

Guarded by their own token (``X-Admin-Token``), never by the trading API key, so a
trading program cannot flip them. Bodies are JSON; a bad body is a 400 with a
one-line ``error`` and changes nothing.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from hedgegrid_ops.venues.binance_local.errors import MESSAGES, BinanceError
from hedgegrid_ops.venues.binance_local.faults import DelayRule, FailRule

if TYPE_CHECKING:
    from hedgegrid_ops.venues.binance_local.server import LocalExchange

AdminHandler = Callable[["LocalExchange", dict[str, Any]], Awaitable[dict[str, Any]]]


class AdminInputError(ValueError):
    """A bad admin request body; the message is the whole answer."""


def _field(body: dict[str, Any], name: str, kind: type, default: Any = ..., check=None) -> Any:
    if name not in body:
        if default is ...:
            raise AdminInputError(f"'{name}' is required")
        return default
    value = body[name]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise AdminInputError(f"'{name}' must be {kind.__name__}")
    if check is not None and not check(value):
        raise AdminInputError(f"'{name}' is out of range: {value!r}")
    return value


async def drop_ws(ex: LocalExchange, body: dict[str, Any]) -> dict[str, Any]:
    kind = _field(body, "kind", str, None, lambda v: v in ("market", "user"))
    return {"dropped": await ex.hub.close_all(kind)}


async def expire_listen_key(ex: LocalExchange, body: dict[str, Any]) -> dict[str, Any]:
    return {"expired": ex.expire_listen_key() is not None}


async def fail(ex: LocalExchange, body: dict[str, Any]) -> dict[str, Any]:
    path = _field(body, "path", str, check=lambda v: v.startswith("/"))
    count = _field(body, "count", int, 1, lambda v: 1 <= v <= 1_000_000)
    status = _field(body, "status", int, 503, lambda v: 400 <= v <= 599)
    code = _field(body, "code", int, -1001, lambda v: v < 0)
    msg = _field(body, "msg", str, MESSAGES.get(code, "Request failed."))
    method = _field(body, "method", str, None, lambda v: v in ("GET", "POST", "PUT", "DELETE"))
    ex.faults.failures.append(FailRule(path, count, status, code, msg, method))
    return ex.faults.describe()


async def delay(ex: LocalExchange, body: dict[str, Any]) -> dict[str, Any]:
    seconds = _field(body, "seconds", float, check=lambda v: 0 < v <= 3600)
    path = _field(body, "path", str, None, lambda v: v.startswith("/"))
    count = _field(body, "count", int, None, lambda v: v >= 1)
    method = _field(body, "method", str, None, lambda v: v in ("GET", "POST", "PUT", "DELETE"))
    ex.faults.delays.append(DelayRule(seconds, path, count, method))
    return ex.faults.describe()


async def pause_market(ex: LocalExchange, body: dict[str, Any]) -> dict[str, Any]:
    ex.faults.market_paused = True
    ex.clock.pause()
    return ex.faults.describe()


async def resume_market(ex: LocalExchange, body: dict[str, Any]) -> dict[str, Any]:
    ex.faults.market_paused = False
    ex.clock.resume()
    return ex.faults.describe()


async def reject_next_order(ex: LocalExchange, body: dict[str, Any]) -> dict[str, Any]:
    code = _field(body, "code", int, check=lambda v: v < 0)
    msg = _field(body, "msg", str, MESSAGES.get(code, "Order rejected."))
    status = _field(body, "status", int, 400, lambda v: 400 <= v <= 599)
    tif = _field(
        body, "time_in_force", str, None, lambda v: v in ("GTC", "IOC", "FOK", "GTX", "GTD")
    )
    ex.engine.reject_next = BinanceError(code, msg, status)
    ex.engine.reject_next_tif = tif
    return {"reject_next_order": {"code": code, "msg": msg, "status": status, "time_in_force": tif}}


async def clear(ex: LocalExchange, body: dict[str, Any]) -> dict[str, Any]:
    ex.faults.clear()
    ex.clock.resume()
    ex.engine.reject_next = None
    ex.engine.reject_next_tif = None
    return ex.faults.describe()


async def status(ex: LocalExchange, body: dict[str, Any]) -> dict[str, Any]:
    eng = ex.engine
    return {
        "faults": ex.faults.describe(),
        "sim_time_ms": (ex.market.now_ns or 0) // 1_000_000,
        "market_events": ex.market_events,
        "requests": ex.requests,
        "connections": {
            "market": sum(1 for c in ex.hub.conns if c.kind == "market"),
            "user": sum(1 for c in ex.hub.conns if c.kind == "user"),
        },
        "streams": sorted(ex.hub.subs),
        "listen_key_active": ex.listen_keys.active is not None,
        "user_streams_on_active_key": len(ex.hub.user_conns(ex.listen_keys.active))
        if ex.listen_keys.active
        else 0,
        "open_orders": len(eng.open_orders()),
        "wallet_balance": str(eng.wallet),
    }


_POST: dict[str, AdminHandler] = {
    "/admin/ws/drop": drop_ws,
    "/admin/listen-key/expire": expire_listen_key,
    "/admin/fail": fail,
    "/admin/delay": delay,
    "/admin/market/pause": pause_market,
    "/admin/market/resume": resume_market,
    "/admin/reject-next-order": reject_next_order,
    "/admin/clear": clear,
}
_GET: dict[str, AdminHandler] = {"/admin/status": status}


def add_admin_routes(app: web.Application, ex: LocalExchange) -> None:
    """Register every admin route on ``app``, each behind the admin token."""

    def wrap(handler: AdminHandler) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def endpoint(request: web.Request) -> web.Response:
            token = request.headers.get("X-Admin-Token", "")
            if not hmac.compare_digest(token.encode(), ex.admin_token.encode()):
                return web.json_response({"error": "missing or wrong X-Admin-Token"}, status=401)
            body: dict[str, Any] = {}
            if request.can_read_body:
                try:
                    body = json.loads(await request.text() or "{}")
                except json.JSONDecodeError as exc:
                    return web.json_response({"error": f"body is not JSON: {exc.msg}"}, status=400)
                if not isinstance(body, dict):
                    return web.json_response({"error": "body must be a JSON object"}, status=400)
            try:
                result = await handler(ex, body)
            except AdminInputError as exc:
                return web.json_response({"error": str(exc)}, status=400)
            return web.json_response(result)

        return endpoint

    for path, handler in _POST.items():
        app.router.add_post(path, wrap(handler))
    for path, handler in _GET.items():
        app.router.add_get(path, wrap(handler))

"""HTTP handlers: thin translations between JSON and the snapshot store / command bus.

GET handlers read the latest snapshot and never wait on the strategy. POST
handlers validate the body completely before anything is queued, then ``submit``
a command and await its result, so a malformed request can never half-execute.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable

import msgspec
from aiohttp import web

from hedgegrid_ops.api import (
    COMMAND_ROUTES,
    MAX_BODY_BYTES,
    READ_ROUTES,
    CommandRoute,
    DayPnl,
    Fill,
    Fills,
    FillsQuery,
    PnlDaily,
    Request,
)
from hedgegrid_ops.commands import Actor, CommandUnavailable
from hedgegrid_ops.grid.types import PositionSide
from hedgegrid_ops.history.store import FillHistory, StoredFill
from hedgegrid_ops.logs import sink_problems
from hedgegrid_ops.ops.audit import audit_attempt
from hedgegrid_ops.ops.context import CONTEXT, KEY_USED, REQUEST_ID, OpsContext
from hedgegrid_ops.ops.errors import ApiError, json_response
from hedgegrid_ops.ops.openapi import build_openapi
from hedgegrid_ops.ops.views import health_view, ladders_view, orders_view, status_view
from hedgegrid_ops.snapshot import StrategySnapshot

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Swagger UI files served from the installed package; nothing else under /docs/static.
SWAGGER_ASSETS = {
    "swagger-ui.css": "text/css",
    "index.css": "text/css",
    "swagger-ui-bundle.js": "application/javascript",
    "swagger-ui-standalone-preset.js": "application/javascript",
    "favicon-32x32.png": "image/png",
    "favicon-16x16.png": "image/png",
}


def _ctx(request: web.Request) -> OpsContext:
    return request.app[CONTEXT]


def _latest(request: web.Request) -> StrategySnapshot:
    snap = _ctx(request).store.latest
    if snap is None:
        raise ApiError(503, "unavailable", "the strategy has not published any state yet")
    return snap


def _node_running(ctx: OpsContext) -> bool:
    try:
        return bool(ctx.node_running())
    except Exception:  # a broken probe means we cannot vouch for the node
        return False


# ---- reads ---------------------------------------------------------------------------


async def health(request: web.Request) -> web.Response:
    ctx = _ctx(request)
    verdict = health_view(
        ctx.store.latest,
        _node_running(ctx),
        time.time(),
        ctx.settings.max_bar_age,
        commands_alive=ctx.bus.consumer_alive,
        venue_problem=ctx.current_venue_problem(),
        log_problems=sink_problems(),
    )
    return json_response(verdict.body, verdict.http_status)


def _snapshot_view(
    request: web.Request, view: Callable[[StrategySnapshot], object]
) -> web.Response:
    """The view of the latest snapshot as JSON, encoded once per snapshot and view.

    The strategy publishes a few snapshots a second while monitoring may ask many
    times more often; every request between two snapshots gets the same bytes."""
    snap = _latest(request)
    cache = _ctx(request).encoded_views
    name = view.__name__
    hit = cache.get(name)
    if hit is None or hit[0] is not snap:
        hit = cache[name] = (snap, msgspec.json.encode(view(snap)))
    return web.Response(body=hit[1], content_type="application/json")


async def status(request: web.Request) -> web.Response:
    return _snapshot_view(request, status_view)


async def ladders(request: web.Request) -> web.Response:
    return _snapshot_view(request, ladders_view)


async def orders(request: web.Request) -> web.Response:
    return _snapshot_view(request, orders_view)


def _history(request: web.Request) -> FillHistory:
    history = _ctx(request).history
    if history is None:
        raise ApiError(503, "unavailable", "no fill history is kept (no state directory)")
    return history


def decode_query[R: Request](request: web.Request, kind: type[R]) -> R:
    """Validate a query string completely by converting it into its Struct (400 if not)."""
    query = request.query
    repeated = sorted({k for k in query if len(query.getall(k)) > 1})
    if repeated:
        raise ApiError(400, "invalid_type", f"query parameter given more than once: {repeated}")
    try:
        return msgspec.convert(dict(query), kind, strict=False)
    except msgspec.ValidationError as exc:
        raise validation_error(exc, kind) from None


async def fills(request: web.Request) -> web.Response:
    """A page of the history, newest first; the read runs off the loop (SQLite is disk I/O)."""
    q = decode_query(request, FillsQuery)
    # One row more than the page: whether an older page exists, without a second query.
    since = None if q.since is msgspec.UNSET else q.since
    before = None if q.before is msgspec.UNSET else q.before
    rows = await asyncio.to_thread(_history(request).fills, since, before, q.limit + 1)
    page = [_fill_view(r) for r in rows[: q.limit]]
    more = len(rows) > q.limit
    return json_response(
        Fills(
            fills=page,
            count=len(page),
            next_before=page[-1].seq if more else None,
            timestamp=time.time(),
        )
    )


def _fill_view(stored: StoredFill) -> Fill:
    f = stored.fill
    return Fill(
        seq=stored.seq,
        time=f.ts,
        trade_id=f.trade_id,
        client_order_id=f.client_order_id,
        venue_order_id=f.venue_order_id,
        side="BUY" if f.side == "BUY" else "SELL",
        position_side=PositionSide(f.position_side) if f.position_side else None,
        price=f.price,
        qty=f.qty,
        commission=f.commission,
        commission_asset=f.commission_asset,
        liquidity="maker" if f.liquidity == "maker" else "taker",
        realized_pnl=f.realized_pnl,
        request_id=f.request_id,
    )


async def pnl_daily(request: web.Request) -> web.Response:
    days = await asyncio.to_thread(_history(request).daily)
    rows = [DayPnl(d.day, d.realized_pnl, d.fees, d.funding, d.fills) for d in days]
    return json_response(PnlDaily(days=rows, timestamp=time.time()))


async def metrics(request: web.Request) -> web.Response:
    ctx = _ctx(request)
    body, content_type = ctx.metrics.render(ctx.store.latest)
    # aiohttp wants the charset separately from the media type.
    media_type, _, params = content_type.partition(";")
    resp = web.Response(body=body)
    resp.headers["Content-Type"] = content_type if params else media_type
    return resp


async def openapi_json(request: web.Request) -> web.Response:
    ctx = _ctx(request)
    return json_response(build_openapi(auth_enabled=ctx.settings.auth_enabled))


_DOCS_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>hedgegrid_ops API</title>
<link rel="stylesheet" href="/docs/static/swagger-ui.css">
<link rel="icon" type="image/png" href="/docs/static/favicon-32x32.png" sizes="32x32">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/static/swagger-ui-bundle.js"></script>
<script src="/docs/static/swagger-ui-standalone-preset.js"></script>
<script>
window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    layout: "StandaloneLayout",
    validatorUrl: null
  });
};
</script>
</body>
</html>
"""


async def docs(request: web.Request) -> web.Response:
    if _ctx(request).swagger_dir is None:
        raise ApiError(503, "unavailable", "the Swagger UI assets are not installed")
    return web.Response(text=_DOCS_PAGE, content_type="text/html")


async def docs_asset(request: web.Request) -> web.StreamResponse:
    swagger_dir = _ctx(request).swagger_dir
    name = request.match_info["filename"]
    if swagger_dir is None:
        raise ApiError(503, "unavailable", "the Swagger UI assets are not installed")
    content_type = SWAGGER_ASSETS.get(name)
    if content_type is None:
        raise ApiError(404, "not_found", f"no documentation asset named {name!r}")
    # FileResponse opens and reads the file off the event loop.
    resp = web.FileResponse(swagger_dir / name, headers={"Cache-Control": "max-age=86400"})
    resp.content_type = content_type
    return resp


# ---- commands ------------------------------------------------------------------------

# How a msgspec validation message maps onto the API's 400 error codes (first match wins).
_VALIDATION_CODES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^Object contains unknown field"), "unknown_field"),
    (re.compile(r"^Object missing required field"), "missing_field"),
    (re.compile(r"^Invalid enum value"), "invalid_side"),  # the only enum in a request body
    (re.compile(r"^Number out of range|^Expected `\w+` [<>]=?"), "out_of_range"),
)


def validation_error(exc: msgspec.ValidationError, kind: type[Request]) -> ApiError:
    """The 400 ``ApiError`` for a body that is JSON but does not fit ``kind``."""
    message = str(exc)
    code = next((c for p, c in _VALIDATION_CODES if p.search(message)), "invalid_type")
    if code == "unknown_field":
        accepted = ", ".join(kind.__struct_fields__) or "no fields"
        message = f"{message}; accepted: {accepted}"
    return ApiError(400, code, message)


def decode_request[R: Request](raw: bytes, kind: type[R]) -> R:
    """Validate a body completely by decoding it into its Struct; an empty body is ``{}``."""
    try:
        return msgspec.json.decode(raw if raw.strip() else b"{}", type=kind)
    except msgspec.ValidationError as exc:
        raise validation_error(exc, kind) from None
    except msgspec.DecodeError as exc:
        raise ApiError(400, "invalid_json", f"the body is not valid JSON: {exc}") from None


async def _read_body(request: web.Request) -> bytes:
    length = request.content_length
    if length is not None and length > MAX_BODY_BYTES:
        raise ApiError(
            413, "payload_too_large", f"the body is {length} bytes; the limit is {MAX_BODY_BYTES}"
        )
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise ApiError(
            413, "payload_too_large", f"the body is over the {MAX_BODY_BYTES}-byte limit"
        ) from None


def actor_of(request: web.Request) -> Actor:
    return Actor(request.remote or "unknown", request.get(KEY_USED, False), request[REQUEST_ID])


def command_handler(route: CommandRoute) -> Handler:
    """POST handler: decode the body into ``route.request``, submit, answer the result Struct."""

    async def handle(request: web.Request) -> web.Response:
        actor = actor_of(request)
        action = route.action.value
        try:
            body = decode_request(await _read_body(request), route.request)
        except ApiError as exc:
            audit_attempt(action, {}, actor, "invalid", exc.detail)
            raise
        try:
            result = await _ctx(request).bus.submit(route.action, body, actor)
        except CommandUnavailable as exc:
            audit_attempt(action, msgspec.to_builtins(body), actor, "unavailable", str(exc))
            raise
        if not isinstance(result, route.result):  # a broken target is a 500, not a bad answer
            raise RuntimeError(f"control target answered {action} with {type(result).__name__}")
        return json_response(result)

    handle.__name__ = handle.__qualname__ = f"command_{route.action.value}"
    return handle


_READ_HANDLERS: dict[str, Handler] = {
    "/health": health,
    "/status": status,
    "/ladders": ladders,
    "/orders": orders,
    "/fills": fills,
    "/pnl/daily": pnl_daily,
}


def add_api_routes(app: web.Application) -> None:
    """Every route of the control API: the JSON ones from the ``api`` route table."""
    for read in READ_ROUTES:
        app.router.add_get(read.path, _READ_HANDLERS[read.path], allow_head=False)
    for command in COMMAND_ROUTES:
        app.router.add_post(command.path, command_handler(command))
    app.router.add_get("/metrics", metrics, allow_head=False)
    app.router.add_get("/openapi.json", openapi_json, allow_head=False)
    app.router.add_get("/docs", docs, allow_head=False)
    app.router.add_get("/docs/static/{filename}", docs_asset, allow_head=False)


def add_metrics_routes(app: web.Application) -> None:
    """The Prometheus listener: scrape target and a probe, nothing that controls anything."""
    app.router.add_get("/metrics", metrics, allow_head=False)
    app.router.add_get("/health", health, allow_head=False)

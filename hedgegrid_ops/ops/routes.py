"""HTTP handlers: thin translations between JSON and the snapshot store / command bus.

GET handlers read the latest snapshot and never wait on the strategy. POST
handlers validate the body completely before anything is queued, then ``submit``
a command and await its result, so a malformed request can never half-execute.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web

from hedgegrid_ops.commands import Action, Actor, CommandUnavailable
from hedgegrid_ops.ops.audit import audit_attempt
from hedgegrid_ops.ops.context import CONTEXT, KEY_USED, REQUEST_ID, OpsContext
from hedgegrid_ops.ops.errors import ApiError, json_response
from hedgegrid_ops.ops.openapi import build_openapi
from hedgegrid_ops.ops.views import health_view, ladders_view, orders_view, status_view
from hedgegrid_ops.snapshot import StrategySnapshot

MAX_BODY_BYTES = 64 * 1024
FLATTEN_SIDES = ("long", "short", "both")

# Keys the strategy's ControlTarget must return for each action (the wire contract).
RESULT_KEYS: dict[Action, tuple[str, ...]] = {
    Action.START: ("status", "previous_state", "trading_state"),
    Action.STOP: ("status", "previous_state", "trading_state", "cancelled_orders"),
    Action.FLATTEN: (
        "status",
        "side",
        "cancelled_orders",
        "closing_positions",
        "already_closing",
        "trading_state",
    ),
    Action.SET_THROTTLE: ("status", "new_throttle", "previous_throttle"),
}

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
    )
    return json_response(verdict.body, verdict.http_status)


async def status(request: web.Request) -> web.Response:
    return json_response(status_view(_latest(request)))


async def ladders(request: web.Request) -> web.Response:
    return json_response(ladders_view(_latest(request)))


async def orders(request: web.Request) -> web.Response:
    return json_response(orders_view(_latest(request)))


async def metrics(request: web.Request) -> web.Response:
    ctx = _ctx(request)
    body, content_type = ctx.metrics.render(request.headers.get("Accept"), ctx.store.latest)
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


async def _json_body(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object; an empty body counts as ``{}``."""
    length = request.content_length
    if length is not None and length > MAX_BODY_BYTES:
        raise ApiError(
            413, "payload_too_large", f"the body is {length} bytes; the limit is {MAX_BODY_BYTES}"
        )
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise ApiError(
            413, "payload_too_large", f"the body is over the {MAX_BODY_BYTES}-byte limit"
        ) from None
    if not raw.strip():
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, "invalid_json", f"the body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_type", "the body must be a JSON object")
    return body


def _only_fields(body: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        accepted = ", ".join(allowed) if allowed else "no fields"
        raise ApiError(
            400, "unknown_field", f"unknown field(s) {', '.join(unknown)}; accepted: {accepted}"
        )


def _require(body: Mapping[str, Any], name: str) -> Any:
    if name not in body:
        raise ApiError(400, "missing_field", f"the field {name!r} is required")
    return body[name]


def _parse_flatten(body: dict[str, Any]) -> dict[str, Any]:
    _only_fields(body, ("side",))
    side = _require(body, "side")
    if not isinstance(side, str):
        raise ApiError(400, "invalid_type", "side must be a string: long, short or both")
    if side not in FLATTEN_SIDES:
        raise ApiError(400, "invalid_side", f"side must be long, short or both, got {side!r}")
    return {"side": side}


def _parse_throttle(body: dict[str, Any]) -> dict[str, Any]:
    _only_fields(body, ("throttle",))
    value = _require(body, "throttle")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ApiError(400, "invalid_type", "throttle must be a number between 0.0 and 1.0")
    throttle = float(value)
    if not math.isfinite(throttle) or not 0.0 <= throttle <= 1.0:
        raise ApiError(400, "out_of_range", f"throttle must be between 0.0 and 1.0, got {value}")
    return {"throttle": throttle}


def _parse_empty(body: dict[str, Any]) -> dict[str, Any]:
    _only_fields(body, ())
    return {}


_PARSERS = {
    Action.START: _parse_empty,
    Action.STOP: _parse_empty,
    Action.FLATTEN: _parse_flatten,
    Action.SET_THROTTLE: _parse_throttle,
}


def actor_of(request: web.Request) -> Actor:
    return Actor(request.remote or "unknown", request.get(KEY_USED, False), request[REQUEST_ID])


async def _command(request: web.Request, action: Action) -> web.Response:
    actor = actor_of(request)
    try:
        params = _PARSERS[action](await _json_body(request))
    except ApiError as exc:
        audit_attempt(action.value, {}, actor, "invalid", exc.detail)
        raise
    try:
        result = await _ctx(request).bus.submit(action, params, actor)
    except CommandUnavailable as exc:
        audit_attempt(action.value, params, actor, "unavailable", str(exc))
        raise
    missing = [k for k in RESULT_KEYS[action] if k not in result]
    if missing:
        raise RuntimeError(f"control target answered {action.value} without {', '.join(missing)}")
    return json_response({**result, "timestamp": result.get("timestamp", time.time())})


async def start(request: web.Request) -> web.Response:
    return await _command(request, Action.START)


async def stop(request: web.Request) -> web.Response:
    return await _command(request, Action.STOP)


async def flatten(request: web.Request) -> web.Response:
    return await _command(request, Action.FLATTEN)


async def set_throttle(request: web.Request) -> web.Response:
    return await _command(request, Action.SET_THROTTLE)


def add_api_routes(app: web.Application) -> None:
    """Every route of the control API (the OpenAPI document must list exactly these)."""
    app.router.add_get("/health", health, allow_head=False)
    app.router.add_get("/status", status, allow_head=False)
    app.router.add_get("/ladders", ladders, allow_head=False)
    app.router.add_get("/orders", orders, allow_head=False)
    app.router.add_post("/start", start)
    app.router.add_post("/stop", stop)
    app.router.add_post("/flatten", flatten)
    app.router.add_post("/set-throttle", set_throttle)
    app.router.add_get("/metrics", metrics, allow_head=False)
    app.router.add_get("/openapi.json", openapi_json, allow_head=False)
    app.router.add_get("/docs", docs, allow_head=False)
    app.router.add_get("/docs/static/{filename}", docs_asset, allow_head=False)


def add_metrics_routes(app: web.Application) -> None:
    """The Prometheus listener: scrape target and a probe, nothing that controls anything."""
    app.router.add_get("/metrics", metrics, allow_head=False)
    app.router.add_get("/health", health, allow_head=False)

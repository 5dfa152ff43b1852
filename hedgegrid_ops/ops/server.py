"""aiohttp application factories and the middlewares every request passes through.

Order, outermost first:
1. ``observe``: assigns the request id, times the request, writes the access-log
   line and the request metrics, and stamps ``X-Request-ID`` on every response —
   including errors — so a client can always quote it.
2. ``errors``: turns every failure into the JSON error shape; unexpected
   exceptions become a 500 without a stack trace (the trace goes to the log).
3. ``auth``: checks ``X-API-Key`` on protected routes only.
"""

from __future__ import annotations

import itertools
import re
import secrets
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from hedgegrid_ops.api import COMMAND_BY_PATH, MAX_BODY_BYTES
from hedgegrid_ops.commands import CommandConflict, CommandTimeout, CommandUnavailable
from hedgegrid_ops.logs import ACCESS, get_logger
from hedgegrid_ops.ops.audit import audit_attempt
from hedgegrid_ops.ops.auth import API_KEY_HEADER, is_open_route, key_matches
from hedgegrid_ops.ops.context import CONTEXT, KEY_USED, REQUEST_ID, OpsContext
from hedgegrid_ops.ops.errors import ApiError, error_response
from hedgegrid_ops.ops.lifecycle import background_tasks
from hedgegrid_ops.ops.page import add_page_routes
from hedgegrid_ops.ops.routes import actor_of, add_api_routes, add_metrics_routes
from hedgegrid_ops.ops.stream import add_stream_routes

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

REQUEST_ID_HEADER = "X-Request-ID"
_CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
UNMATCHED = "unmatched"


def route_template(request: web.Request) -> str:
    """Bounded metric label: the route template, never the raw path (no ids, no junk)."""
    match_info = request.match_info
    resource = match_info.route.resource
    if resource is not None:
        return resource.canonical
    http_exc = getattr(match_info, "http_exception", None)
    if isinstance(http_exc, web.HTTPMethodNotAllowed):
        # The path matched a registered plain route; only the method was wrong.
        return request.path
    return UNMATCHED


# Request ids only need to be unique, not secret: a random per-process prefix and a
# counter, in uuid4's 32-hex-digit shape, cost a fraction of uuid4's urandom call.
_ID_PREFIX = secrets.token_hex(10)
_id_counter = itertools.count(1)


def _request_id(request: web.Request) -> str:
    offered = request.headers.get(REQUEST_ID_HEADER, "")
    if offered and _CLIENT_REQUEST_ID.match(offered):
        return offered
    return f"{_ID_PREFIX}{next(_id_counter):012x}"


@web.middleware
async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    ctx = request.app[CONTEXT]
    request_id = _request_id(request)
    request[REQUEST_ID] = request_id
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        response.headers[REQUEST_ID_HEADER] = request_id
        return response
    except web.HTTPException as exc:
        status = exc.status
        exc.headers[REQUEST_ID_HEADER] = request_id
        raise
    finally:
        elapsed = time.perf_counter() - started
        route = route_template(request)
        ctx.metrics.observe_request(route, request.method, status, elapsed)
        get_logger("api", ACCESS).info(
            "http_request",
            method=request.method,
            path=request.path,  # never the query string: it could hold anything
            route=route,
            status=status,
            duration_ms=round(elapsed * 1000.0, 3),
            client=request.remote,
            request_id=request_id,
            key_used=request.get(KEY_USED, False),
            user_agent=request.headers.get("User-Agent"),
        )


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    rid = request[REQUEST_ID]
    try:
        return await handler(request)
    except ApiError as exc:
        headers = {"WWW-Authenticate": API_KEY_HEADER} if exc.status == 401 else None
        return error_response(exc.status, exc.code, exc.detail, rid, headers)
    except CommandConflict as exc:
        return error_response(409, "conflict", str(exc) or "not allowed in this state", rid)
    except CommandTimeout as exc:
        return error_response(504, "timeout", str(exc), rid)
    except CommandUnavailable as exc:
        return error_response(503, "unavailable", str(exc), rid)
    except web.HTTPMethodNotAllowed as exc:
        allowed = ", ".join(sorted(exc.allowed_methods))
        return error_response(
            405,
            "method_not_allowed",
            f"{request.method} is not allowed on {request.path}; allowed: {allowed}",
            rid,
            {"Allow": allowed},
        )
    except web.HTTPNotFound:
        return error_response(404, "not_found", f"no route for {request.path}", rid)
    except web.HTTPRequestEntityTooLarge:
        return error_response(
            413, "payload_too_large", f"the body is over the {MAX_BODY_BYTES}-byte limit", rid
        )
    except web.HTTPException:
        raise  # other HTTP semantics (e.g. 304/416 from file serving) pass through as-is
    except Exception:
        get_logger("api").exception(
            "unhandled_error", request_id=rid, method=request.method, path=request.path
        )
        return error_response(
            500,
            "internal_error",
            f"the server failed to handle the request; quote request id {rid}",
            rid,
        )


def make_auth(api_key: str | None) -> Middleware:
    @web.middleware
    async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        presented = request.headers.get(API_KEY_HEADER)
        if api_key is None:
            request[KEY_USED] = False
            return await handler(request)
        if request.match_info.route.resource is None:
            # 404 and 405 are answered as such: the route list is public anyway.
            request[KEY_USED] = key_matches(api_key, presented)
            return await handler(request)
        route = route_template(request)
        if is_open_route(route):
            request[KEY_USED] = key_matches(api_key, presented)
            return await handler(request)
        if not key_matches(api_key, presented):
            detail = (
                f"missing {API_KEY_HEADER} header"
                if presented is None
                else f"wrong {API_KEY_HEADER}"
            )
            command = COMMAND_BY_PATH.get(route)
            if command is not None and request.method == "POST":
                audit_attempt(command.action.value, {}, actor_of(request), "unauthorized", detail)
            raise ApiError(401, "unauthorized", detail)
        request[KEY_USED] = True
        return await handler(request)

    return auth


def _app(ctx: OpsContext, with_auth: bool) -> web.Application:
    middlewares: list[Middleware] = [observe, errors]
    if with_auth:
        middlewares.append(make_auth(ctx.settings.api_key))
    app = web.Application(middlewares=middlewares, client_max_size=MAX_BODY_BYTES)
    app[CONTEXT] = ctx
    return app


def build_api_app(ctx: OpsContext) -> web.Application:
    """The control API: status, commands, metrics, health, OpenAPI and Swagger UI."""
    app = _app(ctx, with_auth=True)
    app.cleanup_ctx.append(background_tasks)  # command consumer + loop-lag probe
    add_api_routes(app)
    add_stream_routes(app)
    add_page_routes(app)
    return app


def build_metrics_app(ctx: OpsContext) -> web.Application:
    """The Prometheus listener: only open routes, so no auth middleware at all."""
    app = _app(ctx, with_auth=False)
    add_metrics_routes(app)
    return app

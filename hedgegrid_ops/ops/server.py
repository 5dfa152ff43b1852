"""aiohttp application factories and the middlewares every request passes through.

Order, outermost first:
1. ``observe``: assigns the request id, times the request, writes the access-log
   line and the request metrics, stamps ``X-Request-ID`` (and CORS headers for a
   configured origin) on every response — including errors — so a client can
   always quote it. Everything taken from the request is cleaned before it is
   logged, so undecodable bytes cannot break the log line (or the answer).
2. ``errors``: turns every failure into the JSON error shape; unexpected
   exceptions become a 500 without a stack trace (the trace goes to the log).
3. ``gate``: the control plane's admission rules, cheapest first — ``Host`` allow-list
   (DNS rebinding), CORS preflight, the in-flight cap (``/health`` and ``/metrics``
   keep a reserved lane), and for POSTs: foreign ``Origin``, per-client rate and
   concurrency limits.
4. ``auth``: checks the API key (``X-API-Key`` or ``Authorization: Bearer``) on
   protected routes, with a per-client budget of failed attempts.
5. ``intake``: a POST body must be ``application/json`` and is read under the body
   timeout, every read failure mapped to a 4xx.

Connection-level limits (header timeout, header sizes, connection cap) live in
``ops/guard.py``; what each rule answers is tabled in docs/hardening.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import itertools
import re
import secrets
import time
from collections.abc import Awaitable, Callable

import orjson
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Middleware
from aiohttp.web_protocol import RequestPayloadError

from hedgegrid_ops.api import COMMAND_BY_PATH, MAX_BODY_BYTES
from hedgegrid_ops.commands import CommandConflict, CommandTimeout, CommandUnavailable
from hedgegrid_ops.logs import access_line, get_logger
from hedgegrid_ops.ops.audit import audit_attempt
from hedgegrid_ops.ops.audit import confirm as audit_confirm
from hedgegrid_ops.ops.auth import API_KEY_HEADER, is_open_route, key_matches, presented_key
from hedgegrid_ops.ops.context import CONTEXT, KEY_USED, REQUEST_ID, OpsContext
from hedgegrid_ops.ops.errors import ApiError, error_response
from hedgegrid_ops.ops.guard import clean_text
from hedgegrid_ops.ops.lifecycle import background_tasks
from hedgegrid_ops.ops.limits import TokenBuckets, retry_after_header
from hedgegrid_ops.ops.page import add_page_routes
from hedgegrid_ops.ops.routes import actor_of, add_api_routes, add_metrics_routes
from hedgegrid_ops.ops.settings import OpsSettings
from hedgegrid_ops.ops.stream import add_stream_routes

_log = get_logger("api")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

REQUEST_ID_HEADER = "X-Request-ID"
AUDIT_HEADER = "X-Audit"
_CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
UNMATCHED = "unmatched"
# The reserved lane: probes and scrapes are never refused by the in-flight cap.
LANE_ROUTES = frozenset({"/health", "/metrics"})
# Long-lived: the event stream has its own client cap and must not hold in-flight slots.
UNCOUNTED_ROUTES = frozenset({"/events"})
# Commands run one at a time on the strategy; more than this many waiting is a flood.
MAX_POSTS_IN_FLIGHT = 8
JSON_MEDIA_TYPE = "application/json"
MAX_REMEMBERED_HOSTS = 256


class Gate:
    """Per-listener admission state: in-flight counts and the per-client budgets."""

    def __init__(self, settings: OpsSettings) -> None:
        self.settings = settings
        self.inflight = 0
        self.posts_inflight = 0
        self.auth_failures = TokenBuckets(settings.auth_failures_per_minute)
        self.posts = TokenBuckets(settings.posts_per_minute)
        self._host_verdicts: dict[str | None, bool] = {}

    def host_allowed(self, value: str | None) -> bool:
        """``host_allowed``, remembered per ``Host`` value (a client sends the same one on
        every request); a flood of distinct values only refills a bounded table."""
        verdict = self._host_verdicts.get(value)
        if verdict is None:
            if len(self._host_verdicts) >= MAX_REMEMBERED_HOSTS:
                self._host_verdicts.clear()
            verdict = self._host_verdicts[value] = host_allowed(value, self.settings)
        return verdict


GATE = web.AppKey("hedgegrid_gate", Gate)


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


def _cors_origin(request: web.Request) -> str | None:
    origin = request.headers.get("Origin")
    allowed = request.app[CONTEXT].settings.cors_origins
    return origin if origin is not None and origin in allowed else None


@web.middleware
async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    ctx = request.app[CONTEXT]
    request_id = _request_id(request)
    request[REQUEST_ID] = request_id
    started = time.perf_counter()
    status = 500
    cors = _cors_origin(request)
    try:
        response = await handler(request)
        await _stamp_audit(request_id, response)
        status = response.status
        response.headers[REQUEST_ID_HEADER] = request_id
        if cors is not None:
            response.headers["Access-Control-Allow-Origin"] = cors
            response.headers["Vary"] = "Origin"
        return response
    except web.HTTPException as exc:
        status = exc.status
        exc.headers[REQUEST_ID_HEADER] = request_id
        raise
    except asyncio.CancelledError:
        status = 499  # the client went away (nginx's convention); nothing was sent
        raise
    finally:
        elapsed = time.perf_counter() - started
        route = route_template(request)
        ctx.metrics.observe_request(route, request.method, status, elapsed)
        access_line(
            {
                "method": clean_text(request.method, 16),
                "path": clean_text(request.path),  # never the query string: it could hold anything
                "route": route,
                "status": status,
                "duration_ms": round(elapsed * 1000.0, 3),
                "client": request.remote,
                "request_id": request_id,
                "key_used": request.get(KEY_USED, False),
                "user_agent": clean_text(request.headers.get("User-Agent")),
            }
        )


async def _stamp_audit(request_id: str, response: web.StreamResponse) -> None:
    """Hold the answer until the request's audit lines are on disk, and say which.

    ``X-Audit: recorded`` or ``failed`` on every answer that wrote an audit entry; a
    JSON answer whose entry could not be written also carries ``"audit_recorded": false``
    so a client that only reads bodies learns it too.
    """
    recorded = await audit_confirm(request_id)
    if recorded is None:
        return
    response.headers[AUDIT_HEADER] = "recorded" if recorded else "failed"
    if recorded or not isinstance(response, web.Response):
        return
    if response.content_type == "application/json" and isinstance(response.body, bytes):
        with contextlib.suppress(orjson.JSONDecodeError, TypeError):
            body = orjson.loads(response.body)
            if isinstance(body, dict):
                response.body = orjson.dumps({**body, "audit_recorded": False})


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    rid = request[REQUEST_ID]
    try:
        return await handler(request)
    except ApiError as exc:
        headers = dict(exc.headers or {})
        if exc.status == 401:
            headers["WWW-Authenticate"] = API_KEY_HEADER
        response = error_response(exc.status, exc.code, exc.detail, rid, headers or None)
        if exc.close:
            response.force_close()
        return response
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
        return error_response(404, "not_found", f"no route for {clean_text(request.path)}", rid)
    except web.HTTPRequestEntityTooLarge:
        return error_response(
            413, "payload_too_large", f"the body is over the {MAX_BODY_BYTES}-byte limit", rid
        )
    except web.HTTPException:
        raise  # other HTTP semantics (e.g. 304/416 from file serving) pass through as-is
    except Exception:
        _log.exception(
            "unhandled_error",
            request_id=rid,
            method=clean_text(request.method, 16),
            path=clean_text(request.path),
        )
        return error_response(
            500,
            "internal_error",
            f"the server failed to handle the request; quote request id {rid}",
            rid,
        )


# ---- gate ----------------------------------------------------------------------------


def _host_name(value: str) -> str:
    """The name part of a ``Host`` header value (no port, no IPv6 brackets), lower-cased."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        return value[1:end] if end > 0 else value
    name, sep, port = value.rpartition(":")
    return name if sep and port.isdigit() and ":" not in name else value


def host_allowed(value: str | None, settings: OpsSettings) -> bool:
    """IP literals, ``localhost``, the bound name and the configured names pass.

    DNS rebinding needs the browser to send the attacker's *name* as ``Host``; an IP
    literal can never be rebound, so only names are checked against the list.
    """
    if value is None:
        return True  # HTTP/1.0 clients; browsers always send Host
    name = _host_name(value)
    if not name:
        return False
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        pass
    allowed = {"localhost", settings.host.lower(), *(h.lower() for h in settings.allowed_hosts)}
    return name in allowed


def _same_origin(origin: str, host: str | None) -> bool:
    _, sep, rest = origin.partition("://")
    return bool(sep) and host is not None and rest.lower() == host.strip().lower()


def _media_type(request: web.Request) -> str | None:
    raw = request.headers.get("Content-Type")
    if raw is None:
        return None
    return raw.partition(";")[0].strip().lower()


def _preflight(request: web.Request) -> web.Response:
    origin = _cors_origin(request)
    if origin is None or "Access-Control-Request-Method" not in request.headers:
        raise ApiError(403, "forbidden_origin", "cross-origin requests are not allowed here")
    return web.Response(
        status=204,
        headers={
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": "GET, POST",
            "Access-Control-Allow-Headers": f"Content-Type, {API_KEY_HEADER}, Authorization",
            "Access-Control-Max-Age": "600",
            "Vary": "Origin",
        },
    )


async def _read_body(request: web.Request, timeout: float) -> None:
    """Read (and cache) the body under a timeout, mapping every failure to a 4xx.

    The handlers call ``request.read()`` again and get the cached bytes. A client that
    stops sending mid-body, sends bad gzip or bad chunking, or vanishes, ends here as a
    4xx (its connection closed) instead of as a 500 from deep inside a handler.
    """
    try:
        async with asyncio.timeout(timeout):
            await request.read()
    except TimeoutError:
        raise ApiError(
            408,
            "request_timeout",
            f"the body did not arrive within {timeout:g}s",
            close=True,
        ) from None
    except web.HTTPRequestEntityTooLarge:
        raise ApiError(
            413,
            "payload_too_large",
            f"the body is over the {MAX_BODY_BYTES}-byte limit",
            close=True,
        ) from None
    except (RequestPayloadError, HttpProcessingError, ConnectionError, EOFError) as exc:
        # Mark the body finished so aiohttp does not try to drain (and re-raise) it.
        request.content.feed_eof()
        detail = clean_text(str(exc), 200) or type(exc).__name__
        raise ApiError(
            400,
            "malformed_request",
            f"the body could not be read: {' '.join(detail.split())}",
            close=True,
        ) from None


@web.middleware
async def gate(request: web.Request, handler: Handler) -> web.StreamResponse:
    g = request.app[GATE]
    settings = g.settings
    host = request.headers.get("Host")
    if not g.host_allowed(host):
        raise ApiError(
            421,
            "misdirected_request",
            f"Host {clean_text(host, 100)!r} is not served here; allowed: IP addresses, "
            "localhost and the configured --allowed-host names",
        )
    if request.method == "OPTIONS":
        return _preflight(request)
    route = route_template(request)
    if route in LANE_ROUTES or route in UNCOUNTED_ROUTES:
        return await handler(request)
    if g.inflight >= settings.max_inflight:
        raise ApiError(
            503, "overloaded", "too many requests in flight; retry shortly", {"Retry-After": "1"}
        )
    if request.method == "POST":
        _admit_post(request, g)
    g.inflight += 1
    try:
        return await handler(request)
    finally:
        g.inflight -= 1


def _admit_post(request: web.Request, g: Gate) -> None:
    """Foreign origins and per-client command budgets, checked before the key."""
    origin = request.headers.get("Origin")
    if (
        origin is not None
        and origin not in g.settings.cors_origins
        and not _same_origin(origin, request.headers.get("Host"))
    ):
        raise ApiError(
            403, "forbidden_origin", f"requests from origin {clean_text(origin, 100)!r} are refused"
        )
    client = request.remote or "unknown"
    wait = g.posts.take(client)
    if wait > 0:
        raise ApiError(
            429,
            "too_many_requests",
            f"over {g.settings.posts_per_minute} commands per minute from {client}",
            {"Retry-After": retry_after_header(wait)},
        )
    if g.posts_inflight >= MAX_POSTS_IN_FLIGHT:
        raise ApiError(
            429,
            "too_many_requests",
            f"{MAX_POSTS_IN_FLIGHT} commands are already waiting",
            {"Retry-After": "1"},
        )


@web.middleware
async def intake(request: web.Request, handler: Handler) -> web.StreamResponse:
    """After auth: a POST body must be JSON, and it is read here under the body timeout.

    An empty body is accepted whatever its declared type (some clients, aiohttp's
    among them, label an empty POST ``application/octet-stream``); there is nothing to
    interpret, and a cross-site page cannot send one without a foreign ``Origin``.
    """
    if request.method != "POST":
        return await handler(request)
    g = request.app[GATE]
    has_body = request.can_read_body
    g.posts_inflight += 1
    try:
        try:
            media = _media_type(request)
            if has_body and media != JSON_MEDIA_TYPE:
                raise ApiError(
                    415,
                    "unsupported_media_type",
                    f"POST bodies must be {JSON_MEDIA_TYPE}, got {clean_text(media, 100)!r}",
                )
            if has_body:
                await _read_body(request, g.settings.body_timeout)
        except ApiError as exc:
            command = COMMAND_BY_PATH.get(route_template(request))
            if command is not None:  # a refused command is still an audited attempt
                audit_attempt(command.action.value, {}, actor_of(request), "invalid", exc.detail)
            raise
        return await handler(request)
    finally:
        g.posts_inflight -= 1


# ---- auth ----------------------------------------------------------------------------


def make_auth(api_key: str | None, protect_metrics: bool = False) -> Middleware:
    @web.middleware
    async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        presented = presented_key(request.headers)
        if api_key is None:
            request[KEY_USED] = False
            return await handler(request)
        if request.match_info.route.resource is None:
            # 404 and 405 are answered as such: the route list is public anyway.
            request[KEY_USED] = key_matches(api_key, presented)
            return await handler(request)
        route = route_template(request)
        if is_open_route(route) and not (protect_metrics and route == "/metrics"):
            request[KEY_USED] = key_matches(api_key, presented)
            return await handler(request)
        failures = request.app[GATE].auth_failures
        client = request.remote or "unknown"
        blocked = failures.retry_after(client)
        if blocked > 0:
            raise ApiError(
                429,
                "too_many_requests",
                "too many failed authentication attempts; wait before retrying",
                {"Retry-After": retry_after_header(blocked)},
            )
        if not key_matches(api_key, presented):
            if presented is not None:  # a guess; a missing key guesses nothing
                failures.take(client)
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
    middlewares: list[Middleware] = [observe, errors, gate]
    if with_auth or ctx.settings.metrics_require_key:
        middlewares.append(make_auth(ctx.settings.api_key, ctx.settings.metrics_require_key))
    middlewares.append(intake)
    app = web.Application(middlewares=middlewares, client_max_size=MAX_BODY_BYTES)
    app[CONTEXT] = ctx
    app[GATE] = Gate(ctx.settings)
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
    """The Prometheus listener: only open routes (``/metrics`` keyed when configured)."""
    app = _app(ctx, with_auth=False)
    add_metrics_routes(app)
    return app

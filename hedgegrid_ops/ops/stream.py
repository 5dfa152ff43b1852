"""``GET /events``: the WebSocket side of the event hub.

Authentication never puts the key in a URL (URLs end up in access logs and browser
history). A non-browser client sends ``X-API-Key`` with the upgrade request; a browser,
which cannot set headers on a WebSocket, sends ``{"type": "auth", "key": "..."}`` as its
first message within ``auth_timeout`` seconds. Either way a missing or wrong key closes
the connection with ``CLOSE_UNAUTHORIZED`` (4401) and a reason, before any data is sent.
The route is therefore "open" to the HTTP auth middleware: this handler does the check.

The hub writes the client's frames straight into the connection's transport
(``_TransportSink``): one write per fan-out, the same pre-framed bytes for every client,
no writer task per connection. The handler only reads (and ignores) what the client
sends, so pings and close frames are answered. When the hub drops the client (more than
``buffer`` messages waited to be sent) the socket is closed with ``CLOSE_SLOW_CONSUMER``;
a stalled peer that does not even read the close frame is cut off once it stops making
progress, and what was still buffered for it is discarded rather than kept for a reader
that may never come back.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from hedgegrid_ops.api import Health
from hedgegrid_ops.logs import get_logger
from hedgegrid_ops.ops.auth import API_KEY_HEADER, key_matches
from hedgegrid_ops.ops.context import CONTEXT, OpsContext
from hedgegrid_ops.ops.errors import ApiError
from hedgegrid_ops.ops.events import (
    CLOSE_BAD_MESSAGE,
    CLOSE_GOING_AWAY,
    CLOSE_SLOW_CONSUMER,
    CLOSE_TRY_AGAIN_LATER,
    CLOSE_UNAUTHORIZED,
    EventHub,
    StreamFull,
)
from hedgegrid_ops.ops.views import health_view, ladders_view, orders_view, status_view
from hedgegrid_ops.snapshot import StrategySnapshot

log = get_logger("api")

CLOSE_GRACE = 2.0  # seconds a dropped client gets to acknowledge the close frame
DRAIN_CHECK = 0.5  # after the close: a peer that read nothing for this long is cut off
DRAIN_LIMIT = 30.0  # and one still reading after this long too
# Kernel send buffer per stream connection. Left to autotuning, Linux lets it grow to
# megabytes, and a stalled client would only be noticed minutes later; fixed, what one
# client can hold is this plus aiohttp's write buffer plus its queue of messages.
SEND_BUFFER_BYTES = 128 * 1024
MAX_CLIENT_MESSAGE = 4096  # the client only ever sends its key


def snapshot_data(snap: StrategySnapshot) -> dict[str, Any]:
    """A snapshot message's ``data``: exactly what GET /status, /ladders and /orders answer."""
    return {"status": status_view(snap), "ladders": ladders_view(snap), "orders": orders_view(snap)}


def health_data(ctx: OpsContext) -> Health:
    """The body GET /health would answer now (the heartbeat message carries it)."""
    try:
        running = bool(ctx.node_running())
    except Exception:  # a broken probe means we cannot vouch for the node
        running = False
    return health_view(
        ctx.store.latest,
        running,
        time.time(),
        ctx.settings.max_bar_age,
        commands_alive=ctx.bus.consumer_alive,
        venue_problem=ctx.current_venue_problem(),
    ).body


async def _close(ws: web.WebSocketResponse, code: int, reason: str) -> None:
    """Send a close frame with ``reason`` and give the peer a moment to answer it."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(
            ws.close(code=code, message=reason.encode()[:120], drain=False), CLOSE_GRACE
        )


async def _cut_off_if_stalled(transport: asyncio.Transport) -> None:
    """Once closed, let the peer read what is still buffered for it (the close frame is
    last) while it makes progress; abort when it stops reading or after ``DRAIN_LIMIT``.

    A peer that does not read would otherwise keep up to ``buffer`` messages here for as
    long as its TCP connection lives, which for one that keeps its window shut is
    forever. A dropped client that is catching up still gets everything up to the close
    frame, so it learns why it was dropped.
    """
    left = transport.get_write_buffer_size()
    if not left:
        return
    deadline = asyncio.get_running_loop().time() + DRAIN_LIMIT
    while left:
        await asyncio.sleep(DRAIN_CHECK)
        now_left = transport.get_write_buffer_size()
        if now_left >= left or asyncio.get_running_loop().time() > deadline:
            transport.abort()
            return
        left = now_left


async def _first_message_key(ws: web.WebSocketResponse, timeout: float) -> tuple[str | None, str]:
    """The key from the browser's first message, or None and why not."""
    try:
        msg = await ws.receive(timeout=timeout)
    except TimeoutError:
        return None, f'no auth message within {timeout:g}s: send {{"type": "auth", "key": ...}}'
    if msg.type is not WSMsgType.TEXT:
        return None, "the first message must be a text auth message"
    try:
        body = orjson.loads(msg.data)
    except orjson.JSONDecodeError:
        return None, "the first message is not JSON"
    if (
        not isinstance(body, dict)
        or body.get("type") != "auth"
        or not isinstance(body.get("key"), str)
    ):
        return None, 'the first message must be {"type": "auth", "key": "<api key>"}'
    return body["key"], ""


async def _authenticate(
    request: web.Request, ws: web.WebSocketResponse, api_key: str, timeout: float
) -> str | None:
    """None when the client may stream, else the close reason."""
    presented = request.headers.get(API_KEY_HEADER)
    if presented is not None:
        return None if key_matches(api_key, presented) else f"wrong {API_KEY_HEADER}"
    key, why = await _first_message_key(ws, timeout)
    if key is None:
        return why
    return None if key_matches(api_key, key) else "wrong API key"


def _refuse_foreign_origin(request: web.Request, ctx: OpsContext) -> None:
    """Browsers let any page open a WebSocket to any host (no CORS), so another site open
    in the operator's browser could read the stream if no key is configured: an upgrade
    whose ``Origin`` is neither this server nor a configured CORS origin is refused."""
    origin = request.headers.get("Origin")
    if origin is None or origin in ctx.settings.cors_origins:
        return
    _, sep, rest = origin.partition("://")
    host = request.headers.get("Host")
    if sep and host is not None and rest.lower() == host.strip().lower():
        return
    raise ApiError(403, "forbidden_origin", "the event stream is not served to other origins")


def _bound_send_buffer(request: web.Request) -> None:
    sock = request.transport.get_extra_info("socket") if request.transport else None
    if sock is not None:
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)


class _TransportSink:
    """The hub's view of one WebSocket connection: its transport, until it closes.

    Frames written here bypass aiohttp's per-message writer, which is safe because the
    connection is uncompressed and every write is whole frames: aiohttp's own pings and
    the close frame are whole frames too and cannot interleave with ours. Once the
    handler starts closing (``ws.closed``) nothing more is written, so no data frame can
    follow the close frame.
    """

    __slots__ = ("_transport", "_ws")

    def __init__(self, ws: web.WebSocketResponse, transport: asyncio.Transport) -> None:
        self._ws = ws
        self._transport = transport

    def write(self, data: bytes) -> None:
        self._transport.write(data)

    def unsent(self) -> int:
        return self._transport.get_write_buffer_size()

    def gone(self) -> bool:
        return self._ws.closed or self._transport.is_closing()


async def _read(ws: web.WebSocketResponse) -> None:
    """Consume the client's frames until it closes; the stream is one-way after auth."""
    async for msg in ws:
        if msg.type is WSMsgType.ERROR:
            return


async def events(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CONTEXT]
    hub: EventHub | None = ctx.events
    ws = web.WebSocketResponse(
        heartbeat=30.0, compress=False, max_msg_size=MAX_CLIENT_MESSAGE, timeout=CLOSE_GRACE
    )
    if not ws.can_prepare(request).ok:
        raise ApiError(426, "upgrade_required", "/events is a WebSocket: send an upgrade request")
    _refuse_foreign_origin(request, ctx)
    await ws.prepare(request)
    _bound_send_buffer(request)
    if hub is None:
        await _close(ws, CLOSE_GOING_AWAY, "the event stream is not running")
        return ws
    api_key = ctx.settings.api_key
    if api_key is not None:
        refused = await _authenticate(request, ws, api_key, hub.settings.auth_timeout)
        if refused is not None:
            log.warning("events_unauthorized", client=request.remote, reason=refused)
            code = CLOSE_BAD_MESSAGE if refused.startswith("the first") else CLOSE_UNAUTHORIZED
            await _close(ws, code, refused)
            return ws
    transport = request.transport
    if transport is None:  # the peer went away during the handshake
        return ws
    try:
        sub = hub.subscribe(_TransportSink(ws, transport))
    except StreamFull as exc:
        log.warning("events_refused", client=request.remote, reason=str(exc))
        await _close(ws, CLOSE_TRY_AGAIN_LATER, str(exc))
        return ws
    loop = asyncio.get_running_loop()
    reader = loop.create_task(_read(ws), name=f"hedgegrid-events-read-{sub.id}")
    dropped = loop.create_task(sub.dropped.wait())
    try:
        await asyncio.wait({reader, dropped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        hub.unsubscribe(sub)
        dropped.cancel()
        if sub.drop_reason is not None:
            if sub.drop_code == CLOSE_SLOW_CONSUMER:
                log.warning("events_client_dropped", client=request.remote, reason=sub.drop_reason)
            await _close(ws, sub.drop_code, sub.drop_reason)
        elif not ws.closed:
            await _close(ws, CLOSE_GOING_AWAY, "closing")
        await _cut_off_if_stalled(transport)
        reader.cancel()
        for task in (reader, dropped):
            with contextlib.suppress(BaseException):
                await task
    return ws


def add_stream_routes(app: web.Application) -> None:
    """``GET /events``: open to the auth middleware, the handler checks the key itself."""
    app.router.add_get("/events", events, allow_head=False)

"""Connection-level defences of the ops listeners, below the application's middlewares.

aiohttp already bounds a request line, a header field and the number of headers
(``max_line_size``, ``max_field_size``, ``max_headers``) and closes a connection that
has not delivered a complete request within ``keepalive_timeout`` of connecting or of
its previous answer; with that timeout short, a client trickling headers one byte at a
time is dropped after ``header_timeout`` seconds. What it lacks, added here:

- a cap on open connections per listener. When a newcomer would exceed it, the oldest
  connection that has no request being handled (one still sending headers, or idle
  between requests) is closed. Thousands of slow connections therefore cannot lock an
  operator out: the operator's fresh connection displaces the oldest trickler, never
  the other way round, and descriptors stay bounded;
- a JSON answer (and an access-log line) for requests the HTTP parser rejects before
  any middleware runs (oversized or malformed headers, bad chunking, bad gzip),
  instead of aiohttp's plain-text page.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from aiohttp.web_server import Server

from hedgegrid_ops.logs import access_line, get_logger
from hedgegrid_ops.ops.errors import error_response
from hedgegrid_ops.ops.settings import OpsSettings

_log = get_logger("api")

MAX_LINE_SIZE = 8190  # request line (method, path, query) in bytes
MAX_FIELD_SIZE = 8190  # one header field in bytes
MAX_HEADERS = 64  # header fields per request


def clean_text(value: str | None, limit: int = 256) -> str | None:
    """Header and path text made safe to log: undecodable bytes shown as U+FFFD, length capped.

    aiohttp decodes headers with ``surrogateescape``; such strings cannot be encoded
    as JSON, so anything taken from a request passes through here before a log line.
    """
    if value is None:
        return None
    if value.isascii():  # nearly always: nothing to repair
        return value if len(value) <= limit else value[:limit] + "…"
    text = value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return text if len(text) <= limit else text[:limit] + "…"


class GuardedRequestHandler(RequestHandler):
    """aiohttp's protocol with JSON error pages and an access-log line for parser rejects."""

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:
            raise ConnectionError("response already started; cannot send an error page")
        if status >= 500:
            _log.error("protocol_error", status=status, error=repr(exc))
            code, detail = "internal_error", "the server failed to handle the request"
        else:
            code = "malformed_request"
            why = clean_text(message or (str(exc) if exc else "malformed request"), 200) or ""
            detail = f"malformed HTTP request: {' '.join(why.split())}"
        status = 500 if status >= 500 else 400
        access_line(
            {
                "method": clean_text(request.method, 16),
                "path": None,  # the parser did not get far enough to trust it
                "route": "malformed",
                "status": status,
                "duration_ms": 0.0,
                "client": request.remote,
                "request_id": None,
                "key_used": False,
                "user_agent": None,
                "detail": detail,
            }
        )
        resp = error_response(status, code, detail, "")
        resp.force_close()
        return resp


class GuardedServer(Server):
    """aiohttp's ``Server`` with a connection cap that evicts the oldest idle connection."""

    def __init__(
        self,
        handler: Any,
        *,
        max_connections: int,
        on_evict: Callable[[], None] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(handler, **kwargs)
        self.max_connections = max_connections
        self._on_evict = on_evict
        self._order: OrderedDict[RequestHandler, None] = OrderedDict()
        self.evicted = 0

    def __call__(self) -> RequestHandler:
        return GuardedRequestHandler(self, loop=self._loop, **self._kwargs)

    def connection_made(self, handler: RequestHandler, transport: asyncio.Transport) -> None:
        super().connection_made(handler, transport)
        self._order[handler] = None
        while len(self._order) > self.max_connections:
            victim = self._oldest_idle()
            if victim is None:
                break  # every connection is mid-request: let the newcomer wait its turn
            self._drop(victim)
            self.evicted += 1
            if self._on_evict is not None:
                self._on_evict()

    def connection_lost(self, handler: RequestHandler, exc: BaseException | None = None) -> None:
        self._order.pop(handler, None)
        super().connection_lost(handler, exc)

    def _oldest_idle(self) -> RequestHandler | None:
        for handler in self._order:
            busy = getattr(handler, "_request_in_progress", False) or getattr(
                handler, "_messages", None
            )
            if not busy:
                return handler
        return None

    def _drop(self, handler: RequestHandler) -> None:
        self._order.pop(handler, None)
        handler.force_close()

    @property
    def open_connections(self) -> int:
        return len(self._order)


class GuardedAppRunner(web.AppRunner):
    """``AppRunner`` whose server is a ``GuardedServer`` with the settings' limits."""

    def __init__(
        self,
        app: web.Application,
        settings: OpsSettings,
        on_evict: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(
            app,
            access_log=None,
            handle_signals=False,
            shutdown_timeout=settings.shutdown_timeout,
            keepalive_timeout=settings.header_timeout,
            max_line_size=MAX_LINE_SIZE,
            max_field_size=MAX_FIELD_SIZE,
            max_headers=MAX_HEADERS,
            lingering_time=1.0,
        )
        self._max_connections = settings.max_connections
        self._on_evict = on_evict

    async def _make_server(self) -> Server:
        plain = await super()._make_server()
        return GuardedServer(
            plain.request_handler,
            request_factory=plain.request_factory,
            loop=asyncio.get_running_loop(),
            max_connections=self._max_connections,
            on_evict=self._on_evict,
            **plain._kwargs,  # what AppRunner/Application computed for RequestHandler
        )

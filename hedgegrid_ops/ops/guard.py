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
- a listen queue three quarters as deep as the cap (``listen_backlog``). A closed trickler
  reconnects at once, so every connection the cap does not hold waits in the kernel's
  queue; when that queue is full the kernel drops new SYNs, and a dropped SYN costs
  the operator's client a 1 s retransmission (3 s, 7 s on the next drops): that, not
  the server, was every probe over 1 s under the slow-header flood. The cap is large
  (``OpsSettings.max_connections``) so that a flood of thousands mostly sits in it,
  trickling, rather than cycling through the queue, and the queue holds the rest;
- a descriptor budget (``connection_cap``): the soft ``RLIMIT_NOFILE`` is raised as
  far as the caps need (up to the hard limit) and a cap that still does not fit is
  lowered, so accepting can never fail with EMFILE (which would refuse the operator
  too);
- a JSON answer (and an access-log line) for requests the HTTP parser rejects before
  any middleware runs (oversized or malformed headers, bad chunking, bad gzip),
  instead of aiohttp's plain-text page.
"""

from __future__ import annotations

import asyncio
import resource
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
FD_RESERVE = 512  # descriptors kept for everything but the listeners' connections


def listen_backlog(cap: int) -> int:
    """The listen queue for a listener capped at ``cap`` connections: three quarters of it.

    uvloop accepts everything queued in one pass, and each newcomer past the cap evicts
    the oldest idle connection before any of the pass's request bytes are read. The
    ``cap`` connections held before the pass are older than every newcomer, so a pass
    smaller than the cap evicts one of its own newcomers only if more than a quarter
    of the held connections are mid-request. The queue is deep so that a flood's
    reconnects wait in it instead of having their SYNs, and the operator's, dropped.
    The kernel caps it at ``net.core.somaxconn`` (4096 on Linux since 5.4; 128
    before, which brings SYN drops back under a flood: raise it there).
    """
    return max(1, cap * 3 // 4)


def connection_cap(wanted: int, listeners: int) -> int:
    """The per-listener connection cap that fits this process's descriptor limit.

    Raises the soft ``RLIMIT_NOFILE`` as far as ``listeners`` caps of ``wanted`` plus
    ``FD_RESERVE`` need (never past the hard limit), then returns ``wanted`` or, if the
    limit is still short, what fits.
    """
    need = wanted * listeners + FD_RESERVE
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < need:
        target = need if hard == resource.RLIM_INFINITY else min(need, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass  # keep the soft limit we have; the cap is fitted to it below
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(1, min(wanted, (soft - FD_RESERVE) // listeners))


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
        max_connections: int | None = None,
    ) -> None:
        """``max_connections`` overrides the settings' cap (``connection_cap``'s answer)."""
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
        self._max_connections = max_connections or settings.max_connections
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

"""Client side of ``GET /events``: an async iterator of the server's stream messages.

Non-browser clients authenticate with the ``X-API-Key`` header on the upgrade
request, so the key never appears in a URL. Each message is the server's JSON
object ``{"type", "seq", "time", "data"}`` as a dict (see docs/operations.md for the
types). When the server closes the stream the iterator raises
``HedgeGridStreamClosed`` with the close code and the server's reason, so a caller
can tell a refused key (4401) from a slow client (4408) or a shutdown (1001).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson

from hedgegrid_ops.client import HedgeGridClientError, HedgeGridConnectionError

CLOSE_UNAUTHORIZED = 4401
CLOSE_SLOW_CONSUMER = 4408


class HedgeGridStreamClosed(HedgeGridClientError):
    """The server closed the event stream; ``code`` and ``reason`` say why."""

    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"event stream closed ({code}): {reason or 'no reason given'}")
        self.code = code
        self.reason = reason

    @property
    def unauthorized(self) -> bool:
        return self.code == CLOSE_UNAUTHORIZED


def events_url(base_url: str) -> str:
    base = base_url.rstrip("/")
    if base.startswith("https://"):
        return "wss://" + base.removeprefix("https://") + "/events"
    return "ws://" + base.removeprefix("http://") + "/events"


async def stream_events(
    base_url: str,
    api_key: str | None = None,
    *,
    session: aiohttp.ClientSession | None = None,
    connect_timeout: float = 10.0,
) -> AsyncIterator[dict[str, Any]]:
    """Yield stream messages until the server closes; then raise ``HedgeGridStreamClosed``."""
    own = session is None
    http = session or aiohttp.ClientSession()
    headers = {"X-API-Key": api_key} if api_key else {}
    try:
        try:
            ws = await http.ws_connect(
                events_url(base_url),
                headers=headers,
                timeout=aiohttp.ClientWSTimeout(ws_close=5.0),
                max_msg_size=0,
                heartbeat=30.0,
                autoclose=True,
            )
        except aiohttp.WSServerHandshakeError as exc:
            raise HedgeGridStreamClosed(None, f"HTTP {exc.status} on the upgrade") from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise HedgeGridConnectionError(base_url, str(exc) or type(exc).__name__) from exc
        async with ws:
            while True:
                msg = await ws.receive()
                if msg.type is aiohttp.WSMsgType.TEXT:
                    yield orjson.loads(msg.data)
                elif msg.type is aiohttp.WSMsgType.CLOSE:
                    raise HedgeGridStreamClosed(ws.close_code or msg.data, msg.extra or "")
                elif msg.type is aiohttp.WSMsgType.ERROR:
                    raise HedgeGridStreamClosed(ws.close_code, str(msg.data))
                elif msg.type in (aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
                    raise HedgeGridStreamClosed(ws.close_code, "the connection closed")
    finally:
        if own:
            await http.close()

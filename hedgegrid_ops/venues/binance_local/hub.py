"""WebSocket fan-out: combined market streams and user-data streams.

Each connection gets a bounded outgoing queue drained by its own writer task, so
one slow client can never stall the market pump: when its queue is full it is
disconnected (Binance also drops consumers that cannot keep up). Messages are
serialised once per publish, not once per subscriber.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import orjson
from aiohttp import WSCloseCode, web

log = logging.getLogger("hedgegrid_ops.exchange.ws")

QUEUE_LIMIT = 20_000


class Conn:
    """One accepted WebSocket and its outgoing queue."""

    def __init__(self, ws: web.WebSocketResponse, kind: str, listen_key: str | None = None) -> None:
        self.ws = ws
        self.kind = kind  # "market" or "user"
        self.listen_key = listen_key
        self.streams: set[str] = set()
        self.queue: asyncio.Queue[str | None] = asyncio.Queue(QUEUE_LIMIT)
        self.writer = asyncio.get_running_loop().create_task(self._write(), name=f"ws_{kind}")

    def put(self, text: str) -> bool:
        """Queue a frame; False (and the caller drops us) when the client is too slow."""
        try:
            self.queue.put_nowait(text)
        except asyncio.QueueFull:
            return False
        return True

    async def _write(self) -> None:
        try:
            while True:
                text = await self.queue.get()
                if text is None:
                    break
                await self.ws.send_str(text)
        except (ConnectionError, RuntimeError, asyncio.CancelledError):
            pass
        finally:
            with contextlib.suppress(Exception):
                await self.ws.close(code=WSCloseCode.GOING_AWAY)

    async def close(self) -> None:
        """Stop writing and close the socket (the client sees a server close)."""
        self.writer.cancel()
        with contextlib.suppress(BaseException):
            await self.writer
        with contextlib.suppress(Exception):
            await self.ws.close(code=WSCloseCode.GOING_AWAY)


class StreamHub:
    """Who is subscribed to what, and delivery to them."""

    def __init__(self) -> None:
        self.conns: set[Conn] = set()
        self.subs: dict[str, set[Conn]] = {}
        self.published = 0

    def add(self, conn: Conn) -> None:
        self.conns.add(conn)

    def remove(self, conn: Conn) -> None:
        self.conns.discard(conn)
        for stream in conn.streams:
            subscribers = self.subs.get(stream)
            if subscribers is not None:
                subscribers.discard(conn)
                if not subscribers:
                    del self.subs[stream]
        conn.streams.clear()

    def subscribe(self, conn: Conn, streams: list[str]) -> None:
        for stream in streams:
            conn.streams.add(stream)
            self.subs.setdefault(stream, set()).add(conn)

    def unsubscribe(self, conn: Conn, streams: list[str]) -> None:
        for stream in streams:
            conn.streams.discard(stream)
            subscribers = self.subs.get(stream)
            if subscribers is not None:
                subscribers.discard(conn)
                if not subscribers:
                    del self.subs[stream]

    def has_subscribers(self, stream: str) -> bool:
        return stream in self.subs

    def publish(self, stream: str, data: dict[str, Any]) -> None:
        """Send ``{"stream": ..., "data": ...}`` to the stream's subscribers."""
        subscribers = self.subs.get(stream)
        if not subscribers:
            return
        text = orjson.dumps({"stream": stream, "data": data}).decode()
        self.published += 1
        for conn in list(subscribers):
            if not conn.put(text):
                log.warning("ws_slow_consumer_dropped stream=%s", stream)
                self._drop(conn)

    def send_user(self, listen_key: str, events: list[dict[str, Any]]) -> None:
        """User-data events go out raw (not wrapped), to every socket on the key."""
        targets = [c for c in self.conns if c.kind == "user" and c.listen_key == listen_key]
        if not targets:
            return
        texts = [orjson.dumps(e).decode() for e in events]
        for conn in targets:
            for text in texts:
                if not conn.put(text):
                    log.warning("ws_slow_consumer_dropped user stream")
                    self._drop(conn)
                    break

    def user_conns(self, listen_key: str | None = None) -> list[Conn]:
        return [
            c
            for c in self.conns
            if c.kind == "user" and (listen_key is None or c.listen_key == listen_key)
        ]

    def _drop(self, conn: Conn) -> None:
        self.remove(conn)
        asyncio.get_running_loop().create_task(conn.close())

    async def close_all(self, kind: str | None = None) -> int:
        """Close every (or every market/user) connection; returns how many."""
        targets = [c for c in self.conns if kind is None or c.kind == kind]
        for conn in targets:
            self.remove(conn)
        await asyncio.gather(*(c.close() for c in targets), return_exceptions=True)
        return len(targets)

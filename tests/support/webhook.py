"""A webhook receiver on a real socket: an aiohttp server in its own thread and loop.

Its own thread so that the same receiver serves an async test (whose loop may be busy
driving a node) and a plain test waiting on a subprocess. It records every POST's
JSON body and answers with ``status`` (change it to make the receiver fail). Its URL
carries a secret-looking path, as Slack's and Discord's do, so tests can check that
the secret never reaches a log line.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import orjson
from aiohttp import web

from tests.support.polling import poll, wait_until
from tests.support.prometheus import parse_prometheus

SECRET = "T0000/B0000/not-a-real-secret-XYZZY"


def notification_counts(metrics_text: str) -> dict[tuple[str, str], float]:
    """``hedgegrid_notifications_{delivered,failed,dropped}_total`` from a /metrics text,
    keyed by (outcome, label value): ``("failed", "connection")``."""
    return {
        (s.name.removeprefix("hedgegrid_notifications_").removesuffix("_total"), label): s.value
        for s in parse_prometheus(metrics_text)
        if s.name.startswith("hedgegrid_notifications_")
        for key, label in s.labels.items()
        if key != "instrument"
    }


class WebhookReceiver:
    """Every body POSTed to it, in arrival order; ``status`` is what it answers."""

    def __init__(self, status: int = 200, delay: float = 0.0) -> None:
        self.status = status
        self.delay = delay  # seconds before answering (a slow receiver)
        self.received: list[dict[str, Any]] = []
        self.attempts = 0  # every POST, accepted or not
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="webhook-receiver", daemon=True)
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/services/{SECRET}"

    def texts(self) -> list[str]:
        with self._lock:
            return [body["text"] for body in self.received]

    def wait_for(
        self, predicate: Callable[[list[str]], bool], timeout: float, what: str
    ) -> list[str]:
        """The received texts once ``predicate`` holds (blocking)."""
        return wait_until(self.texts, predicate, timeout, what, interval=0.1)

    async def arrived(
        self, predicate: Callable[[list[str]], bool], timeout: float, what: str
    ) -> list[str]:
        """``wait_for`` for async tests: the test's loop keeps running meanwhile."""

        async def texts() -> list[str]:
            return self.texts()

        return await poll(texts, predicate, timeout, what)

    async def _handle(self, request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        if self.delay:
            await asyncio.sleep(self.delay)
        with self._lock:
            self.attempts += 1
            if 200 <= self.status < 300:
                self.received.append(body)
        return web.Response(status=self.status, text="ok")

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/services/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.port = int(self._runner.addresses[0][1])
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._runner.cleanup())
        self._loop.close()

    def start(self) -> WebhookReceiver:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the webhook receiver did not start")
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)


@contextmanager
def webhook_receiver(status: int = 200, delay: float = 0.0) -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(status, delay).start()
    try:
        yield receiver
    finally:
        receiver.stop()

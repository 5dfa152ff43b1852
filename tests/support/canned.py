"""A loopback HTTP server answering fixed bytes: for answers the real service never gives.

The clients, the CLI and the health script are tested against the real API app
(``tests.support.inprocess.serve_ops``). What they must survive from *other* things
on the path — a proxy's HTML error page, a body that is not JSON, a server too slow
to answer, a newer server with more fields — cannot come from the real app, so this
serves exactly the bytes a test gives it and records what was asked.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiohttp import web


@dataclass(frozen=True)
class Canned:
    status: int
    body: bytes
    content_type: str = "application/json"
    delay: float = 0.0


@dataclass
class CannedServer:
    """``async with CannedServer({("GET", "/health"): Canned(...)}) as server: server.url``"""

    answers: dict[tuple[str, str], Canned]
    asked: list[tuple[str, str, str]] = field(default_factory=list)  # method, Host, path
    url: str = ""
    _runner: web.AppRunner | None = None

    async def __aenter__(self) -> CannedServer:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._answer)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _answer(self, request: web.Request) -> web.Response:
        self.asked.append((request.method, request.headers.get("Host", ""), request.path))
        canned = self.answers.get((request.method, request.path))
        if canned is None:
            return web.Response(status=404, text="no canned answer", content_type="text/plain")
        if canned.delay:
            await asyncio.sleep(canned.delay)
        return web.Response(
            status=canned.status, body=canned.body, content_type=canned.content_type
        )

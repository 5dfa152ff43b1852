"""The floor: a bare aiohttp app on the same loop type, answering a JSON body of a given size.

``make bench`` compares every figure of the real program with this server measured in
the same run, so the ratios say what the operations layer itself costs on this machine,
whatever the machine. ``--busy F`` keeps the loop blocked for a fraction F of the time in
1 ms slices, the way a trading strategy holds the loop while it handles market data, so
the busy floor is the best any single-loop server could do under that load.

``python -m tests.benchmarks.floor --body-bytes 340 [--busy 0.5]`` prints one JSON line
``{"url": ...}`` when it listens, then serves until SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time

import orjson
import uvloop
from aiohttp import web

SLICE_SECONDS = 0.001


def _body(size: int) -> bytes:
    """A JSON object of exactly ``size`` bytes (at least the empty-filler overhead)."""
    overhead = len(orjson.dumps({"filler": ""}))
    return orjson.dumps({"filler": "x" * max(0, size - overhead)})


async def _keep_busy(fraction: float) -> None:
    """Block the loop ``fraction`` of the time in slices of 1 ms."""
    idle = SLICE_SECONDS * (1.0 - fraction) / fraction
    while True:
        until = time.perf_counter() + SLICE_SECONDS
        while time.perf_counter() < until:
            pass
        await asyncio.sleep(idle)


async def _serve(body_bytes: int, busy: float) -> None:
    payload = _body(body_bytes)

    async def answer(_request: web.Request) -> web.Response:
        return web.Response(body=payload, content_type="application/json")

    app = web.Application()
    app.router.add_get("/{tail:.*}", answer)
    app.router.add_post("/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    sys.stdout.write(orjson.dumps({"url": f"http://127.0.0.1:{port}"}).decode() + "\n")
    sys.stdout.flush()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    busy_task = loop.create_task(_keep_busy(busy)) if busy > 0 else None
    await stop.wait()
    if busy_task is not None:
        busy_task.cancel()
    await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--body-bytes", type=int, default=340)
    parser.add_argument("--busy", type=float, default=0.0, help="fraction of time the loop is held")
    args = parser.parse_args()
    if not 0.0 <= args.busy < 1.0:
        parser.error("--busy must be in [0, 1)")
    uvloop.run(_serve(args.body_bytes, args.busy))


if __name__ == "__main__":
    main()

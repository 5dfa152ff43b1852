"""Open-loop load at a fixed request rate, run as its own process.

wrk measures closed loops (a connection sends its next request when the last one is
answered), which hides queueing: a slow answer delays the next request instead of making
it wait. Here requests leave on a fixed schedule whatever happens, and each latency is
counted from the moment the request was *due*, so a stall of the server shows up in the
tail as it would for a Prometheus scrape or an operator's click arriving on its own time.

``python -m tests.benchmarks.openloop URL --rate 500 --seconds 5 [--method POST --json BODY]
[--header 'X-API-Key: ...']`` prints one JSON line of percentiles.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

import aiohttp
import orjson
import uvloop

from tests.benchmarks.stats import latency_summary


async def _fire(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    body: bytes | None,
    due: float,
    latencies: list[float],
    failures: list[int],
) -> None:
    try:
        async with session.request(method, url, data=body) as resp:
            await resp.read()
            if resp.status >= 400:
                failures.append(resp.status)
    except aiohttp.ClientError:
        failures.append(0)
    latencies.append(time.perf_counter() - due)


async def _run(args: argparse.Namespace) -> dict[str, object]:
    headers = dict(h.split(": ", 1) for h in args.header)
    body = args.json.encode() if args.json is not None else None
    if body is not None:
        headers["Content-Type"] = "application/json"
    connector = aiohttp.TCPConnector(limit=64)
    latencies: list[float] = []
    failures: list[int] = []
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        interval = 1.0 / args.rate
        total = int(args.rate * args.seconds)
        start = time.perf_counter()
        tasks = []
        for i in range(total):
            due = start + i * interval
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(
                asyncio.create_task(
                    _fire(session, args.method, args.url, body, due, latencies, failures)
                )
            )
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    return {
        "rate_target": args.rate,
        "rate_achieved": round(len(latencies) / elapsed, 1),
        "errors": len(failures),
        **latency_summary(latencies),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--method", default="GET")
    parser.add_argument("--json", default=None)
    parser.add_argument("--header", action="append", default=[])
    result = uvloop.run(_run(parser.parse_args()))
    sys.stdout.write(orjson.dumps(result).decode() + "\n")


if __name__ == "__main__":
    main()

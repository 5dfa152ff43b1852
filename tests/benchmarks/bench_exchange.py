"""Benchmark of the local Binance exchange (``make bench``; never part of ``make test``).

Runs the real program (``python -m hedgegrid_ops exchange``) and measures from a
client in this process, over loopback:

1. **Start-up**: wall time from spawning the process to its ``exchange_listening``
   line (median of several starts).
2. **Market events delivered**: a WebSocket subscribed to ``@bookTicker`` and
   ``@aggTrade`` counts messages per second while the market runs fast
   (``--speed`` × ``--ticks-per-minute`` ticks per second, two messages per tick).
3. **Orders**: signed ``POST /fapi/v1/order`` + ``DELETE`` pairs (a resting
   post-only order placed and cancelled, both with user-stream events), from
   sequential and concurrent clients, first with the market paused (so the
   exchange's CPU per order is measured alone), then while the market streams.

The machine is shared; wall-clock rates depend on how many cores other
processes leave free, so the exchange's own CPU time per start, per message and
per order is reported too (``/proc/<pid>/stat``).

Prints one JSON object. ``python -m tests.benchmarks.bench_exchange``.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import yarl

from tests.benchmarks.bench_ops import _percentiles
from tests.exchange_support import API_KEY, API_SECRET, ExchangeProcess, request_url

STARTS = 5
SPEED = 20.0  # simulated minutes per wall second
TICKS_PER_MINUTE = 60  # → 1,200 ticks/s → 2,400 stream messages/s offered
MARKET_SECONDS = 5.0
SEQUENTIAL_ORDERS = 300
CONCURRENT_ORDERS = 600
CONCURRENCY = 8


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux ``/proc``): load-independent cost."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_startup() -> dict[str, Any]:
    """Wall time to the listening line, and the CPU the process spent getting there
    (on a shared, overloaded machine the wall time is mostly waiting for a core)."""
    times, cpu = [], []
    for _ in range(STARTS):
        proc = ExchangeProcess("--history-minutes", "240").start()
        times.append(proc.startup_seconds)
        cpu.append(cpu_seconds(proc.info["pid"]))
        proc.stop()
    return {
        "runs": STARTS,
        "wall_median_s": round(statistics.median(times), 3),
        "wall_max_s": round(max(times), 3),
        "cpu_median_s": round(statistics.median(cpu), 3),
        "load_average_1m": os.getloadavg()[0],
    }


def _signed_url(base: str, path: str, params: dict[str, Any]) -> yarl.URL:
    return yarl.URL(request_url(base, path, params, API_SECRET), encoded=True)


async def _count_stream(
    session: aiohttp.ClientSession, ws_url: str, seconds: float, counter: dict[str, int]
) -> None:
    url = f"{ws_url}/stream?streams=btcusdt@bookTicker/btcusdt@aggTrade"
    async with session.ws_connect(url, max_msg_size=0) as ws:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                msg = await ws.receive(timeout=left)
            except TimeoutError:
                break
            if msg.type == aiohttp.WSMsgType.TEXT:
                counter["messages"] += 1


async def _order_pair(session: aiohttp.ClientSession, base: str, price: str, n: int) -> float:
    started = time.perf_counter()
    params = {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "positionSide": "LONG",
        "type": "LIMIT",
        "timeInForce": "GTX",
        "quantity": "0.010",
        "price": price,
        "newClientOrderId": f"bench-{n}",
    }
    headers = {"X-MBX-APIKEY": API_KEY}
    async with session.post(_signed_url(base, "/fapi/v1/order", params), headers=headers) as r:
        body = await r.json()
        assert r.status == 200, body
    cancel = {"symbol": "BTCUSDT", "orderId": body["orderId"]}
    async with session.delete(_signed_url(base, "/fapi/v1/order", cancel), headers=headers) as r:
        assert r.status == 200, await r.text()
    return time.perf_counter() - started


async def _orders(session, base: str, price: str, first: int, n: int, concurrency: int):
    """``n`` order pairs with ``concurrency`` in flight; (wall seconds, latencies)."""
    sem = asyncio.Semaphore(concurrency)

    async def limited(i: int) -> float:
        async with sem:
            return await _order_pair(session, base, price, first + i)

    started = time.monotonic()
    latencies = await asyncio.gather(*(limited(i) for i in range(n)))
    return time.monotonic() - started, list(latencies)


async def bench_live(ex: ExchangeProcess) -> dict[str, Any]:
    base, ws_url = ex.info["rest_url"], ex.info["ws_url"]
    pid = ex.info["pid"]
    async with aiohttp.ClientSession() as session:
        # A user stream is connected, so every order produces WebSocket events too.
        headers = {"X-MBX-APIKEY": API_KEY}
        async with session.post(f"{base}/fapi/v1/listenKey", headers=headers) as r:
            key = (await r.json())["listenKey"]
        user_counter = {"messages": 0}

        async def user_reader() -> None:
            async with session.ws_connect(f"{ws_url}/ws?listenKey={key}") as ws:
                async for msg in ws:
                    if msg.type == aiohttp.WSMsgType.TEXT:
                        user_counter["messages"] += 1

        user_task = asyncio.create_task(user_reader())
        await asyncio.sleep(0.5)

        # 1. Market data alone.
        counter = {"messages": 0}
        started, cpu_started = time.monotonic(), cpu_seconds(pid)
        await _count_stream(session, ws_url, MARKET_SECONDS, counter)
        elapsed = time.monotonic() - started
        market = {
            "offered_messages_per_s": SPEED * TICKS_PER_MINUTE * 2,
            "delivered_messages_per_s": round(counter["messages"] / elapsed, 1),
            "exchange_cpu_ms_per_message": round(
                (cpu_seconds(pid) - cpu_started) / counter["messages"] * 1e3, 4
            ),
        }

        async with session.get(f"{base}/fapi/v1/ticker/bookTicker?symbol=BTCUSDT") as r:
            bid = Decimal((await r.json())["bidPrice"])
        price = f"{bid * Decimal('0.8'):.1f}"

        # 2. Orders alone (market paused): the exchange's CPU per order is measurable.
        admin_headers = {"X-Admin-Token": ex.info["admin_token"]}
        await session.post(f"{base}/admin/market/pause", headers=admin_headers)
        cpu_started = cpu_seconds(pid)
        seq_wall, sequential = await _orders(session, base, price, 0, SEQUENTIAL_ORDERS, 1)
        conc_wall, concurrent = await _orders(
            session, base, price, 100_000, CONCURRENT_ORDERS, CONCURRENCY
        )
        cpu_per_pair = (cpu_seconds(pid) - cpu_started) / (SEQUENTIAL_ORDERS + CONCURRENT_ORDERS)
        await session.post(f"{base}/admin/market/resume", headers=admin_headers)

        # 3. Both at once.
        counter = {"messages": 0}
        stream = asyncio.create_task(_count_stream(session, ws_url, 60.0, counter))
        await asyncio.sleep(0.3)
        started = time.monotonic()
        both_wall, _ = await _orders(session, base, price, 200_000, CONCURRENT_ORDERS, CONCURRENCY)
        market["delivered_messages_per_s_while_ordering"] = round(
            counter["messages"] / (time.monotonic() - started + 0.3), 1
        )
        stream.cancel()
        user_task.cancel()
        return {
            "market": market,
            "orders": {
                "note": "one order = POST (new, resting post-only) + DELETE (cancel), "
                "each with its user-stream event",
                "sequential_orders_per_s": round(SEQUENTIAL_ORDERS / seq_wall, 1),
                "sequential_latency": _percentiles(sequential),
                f"concurrent_{CONCURRENCY}_orders_per_s": round(CONCURRENT_ORDERS / conc_wall, 1),
                "concurrent_latency": _percentiles(concurrent),
                "orders_per_s_while_market_streams": round(CONCURRENT_ORDERS / both_wall, 1),
                "exchange_cpu_ms_per_order": round(cpu_per_pair * 1e3, 3),
                "orders_per_cpu_second": round(1 / cpu_per_pair, 1),
                "user_stream_events": user_counter["messages"],
            },
        }


def main() -> int:
    report: dict[str, Any] = {"startup": bench_startup()}
    args = (
        "--speed",
        str(SPEED),
        "--ticks-per-minute",
        str(TICKS_PER_MINUTE),
        "--balance",
        "1000000",
    )
    with ExchangeProcess(*args) as ex:
        report |= asyncio.run(bench_live(ex))
    report["load_average_1m_at_end"] = os.getloadavg()[0]
    sys.stdout.buffer.write(orjson.dumps({"exchange": report}, option=orjson.OPT_INDENT_2) + b"\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

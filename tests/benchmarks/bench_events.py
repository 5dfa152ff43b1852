"""Event-loop lag of the busy program with 0 and with 50 ``/events`` clients.

Run by ``make bench`` (and ``make bench-events``). The real program trades the offline
market at speed 60 (the stress load of docs/performance.md); the clients run in another
process, so their own CPU is not charged to the server's loop. Lag comes from the
program's own probe histogram (``hedgegrid_event_loop_lag_probe_seconds``), read before
and after each phase; the issue-11 target is a loop-lag p99 of at most 5 ms.

Each client checks what it receives: strictly increasing ``seq`` and a snapshot first;
a client the server dropped (close code 4408) is counted. Phases alternate (0 clients,
50 clients) ``REPS`` times and each figure is the median. Results are printed, written to
``docs/performance-events.json`` and as a table between markers in docs/performance.md.

``BENCH_QUICK=1`` shortens the phases (a smoke run; the numbers are then noisy).
Run as ``python -m tests.benchmarks.bench_events``.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from tests.benchmarks.bench_load import (
    API_KEY,
    ROOT,
    Server,
    counter,
    lag_between,
    lag_buckets,
    program,
    scrape,
)
from tests.benchmarks.stats import median_of, write_results

QUICK = os.environ.get("BENCH_QUICK") == "1"
REPS = 1 if QUICK else 3
PHASE_SECONDS = 3 if QUICK else 10
CLIENTS = 50
SPEED = "60"
DOC = ROOT / "docs" / "performance.md"
JSON_OUT = ROOT / "docs" / "performance-events.json"
BEGIN, END = "<!-- bench-events:begin -->", "<!-- bench-events:end -->"


# ---- the client process ------------------------------------------------------------------


async def _client(url: str, stop_at: float, out: dict[str, Any]) -> None:
    ws_url = url.replace("http://", "ws://") + "/events"
    last_seq = 0
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(ws_url, headers={"X-API-Key": API_KEY}, max_msg_size=0) as ws,
    ):
        first = True
        while time.monotonic() < stop_at:
            try:
                msg = await ws.receive(timeout=max(0.01, stop_at - time.monotonic()))
            except TimeoutError:
                break
            if msg.type is not aiohttp.WSMsgType.TEXT:
                out["closed"] = ws.close_code
                return
            data = orjson.loads(msg.data)
            if first and data["type"] != "snapshot":
                out["errors"] += 1
            first = False
            if data["seq"] <= last_seq:
                out["errors"] += 1
            last_seq = data["seq"]
            out["messages"] += 1
            out["snapshots"] += data["type"] == "snapshot"


async def run_clients(url: str, count: int, seconds: float) -> dict[str, Any]:
    stop_at = time.monotonic() + seconds
    results = [{"messages": 0, "snapshots": 0, "errors": 0, "closed": None} for _ in range(count)]
    await asyncio.gather(*(_client(url, stop_at, r) for r in results))
    return {
        "clients": count,
        "messages_per_client_per_s": round(
            sum(r["messages"] for r in results) / count / seconds, 1
        ),
        "snapshots_per_client_per_s": round(
            sum(r["snapshots"] for r in results) / count / seconds, 2
        ),
        "order_errors": sum(r["errors"] for r in results),
        "dropped": sum(1 for r in results if r["closed"] is not None),
    }


# ---- the benchmark -----------------------------------------------------------------------


def _phase(server: Server, clients: int) -> dict[str, Any]:
    """One phase: lag, bars/s and the program's CPU over PHASE_SECONDS with ``clients``."""
    url = server.url
    proc = None
    if clients:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.benchmarks.bench_events",
                "--clients",
                url,
                str(clients),
                str(PHASE_SECONDS + 3),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        time.sleep(1.5)  # all connected and past their first snapshot
    before = scrape(url)
    cpu0, t0 = server.cpu_seconds(), time.perf_counter()
    time.sleep(PHASE_SECONDS)
    after = scrape(url)
    elapsed = time.perf_counter() - t0
    cpu = (server.cpu_seconds() - cpu0) / elapsed
    row: dict[str, Any] = {
        **lag_between(lag_buckets(before), lag_buckets(after)),
        "bars_per_s": round(
            (
                counter(after, "hedgegrid_bars_processed_total")
                - counter(before, "hedgegrid_bars_processed_total")
            )
            / elapsed,
            1,
        ),
        "program_cpu": round(cpu, 3),
    }
    # CPU per bar: under CPU contention the loop runs fewer bars, so CPU per unit of work
    # is the fairer comparison than CPU per second.
    row["program_cpu_ms_per_bar"] = (
        round(cpu * 1e3 / row["bars_per_s"], 2) if row["bars_per_s"] else None
    )
    if proc is not None:
        out, _ = proc.communicate(timeout=60)
        row.update(orjson.loads(out.strip().splitlines()[-1]))
    return row


def machine() -> dict[str, Any]:
    import platform

    import uvloop

    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "loop": f"uvloop {uvloop.__version__}",
    }


def measure() -> dict[str, Any]:
    runs: dict[int, list[dict[str, Any]]] = {0: [], CLIENTS: []}
    with tempfile.TemporaryDirectory() as tmp, program(SPEED, Path(tmp)) as (server, _):
        time.sleep(4)  # trading, orders on the book
        for _ in range(REPS):
            for clients in (0, CLIENTS):
                runs[clients].append(_phase(server, clients))
    return {
        "machine": machine(),
        "speed": float(SPEED),
        "phase_seconds": PHASE_SECONDS,
        "repetitions": REPS,
        "results": {str(k): {"median": median_of(v), "runs": v} for k, v in runs.items()},
    }


def table(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [
        f"Speed {report['speed']:g} (stress), {report['phase_seconds']} s phases, median of "
        f"{report['repetitions']}; {m.get('cores', '?')} cores, Python {m.get('python', '?')}, "
        f"{m.get('loop', '?')}.",
        "",
        "| /events clients | loop lag p50 | loop lag p99 | bars/s | program CPU "
        "| CPU ms/bar | messages/client/s | snapshots/client/s | dropped | out of order |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for clients, data in report["results"].items():
        r = data["median"]
        lines.append(
            f"| {clients} | {r.get('p50_ms', '-')} ms | {r.get('p99_ms', '-')} ms | "
            f"{r.get('bars_per_s', '-')} | {r.get('program_cpu', '-')} | "
            f"{r.get('program_cpu_ms_per_bar', '-')} | "
            f"{r.get('messages_per_client_per_s', '-')} | "
            f"{r.get('snapshots_per_client_per_s', '-')} | {r.get('dropped', '-')} | "
            f"{r.get('order_errors', '-')} |"
        )
    return "\n".join(lines)


def main() -> int:
    if len(sys.argv) == 5 and sys.argv[1] == "--clients":
        url, count, seconds = sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
        print(orjson.dumps(asyncio.run(run_clients(url, count, seconds))).decode(), flush=True)
        return 0
    report = measure()
    rendered = table(report)
    print(rendered)
    write_results(report, rendered, JSON_OUT, DOC, (BEGIN, END))
    return 0


if __name__ == "__main__":
    sys.exit(main())

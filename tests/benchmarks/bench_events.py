"""Event-loop lag of the busy program with 0 and with 50 ``/events`` clients.

Run by ``make bench`` (and ``make bench-events``). The real program trades the offline
market at speed 60 (the stress load of docs/performance.md); the clients run in another
process, so their own CPU is not charged to the server's loop. Lag comes from the
program's own probe histogram (``hedgegrid_event_loop_lag_probe_seconds``), read before
and after each phase; the issue-11 target is a loop-lag p99 of at most 5 ms.

Each client checks what it receives: strictly increasing ``seq`` and a snapshot first;
a client the server dropped (close code 4408) is counted.

The offline market is seeded, so how busy the strategy is depends on how far into the
run a phase is (the first minutes place the grid, later ones trade less): comparing a
phase with clients against a later phase without them would compare two markets. Each
program run therefore has one client count, and runs with 0 and with 50 clients measure
the same ``PHASES`` windows after start; runs alternate (0, 50, 0, 50, ...) ``PAIRS``
times so machine load drifts evenly, and each figure is the median over all windows.
The machine's 1-minute load average is recorded with every window: other processes on
the same cores show up as loop lag. Results are printed, written to
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
PAIRS = 1 if QUICK else 2
PHASES = 2 if QUICK else 3  # measuring windows per program run, back to back
PHASE_SECONDS = 3 if QUICK else 10
WARMUP_SECONDS = 5.5  # from healthy to the first window: trading, orders on the book
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
            out["bytes"] += len(msg.data)
            out["snapshots"] += data["type"] == "snapshot"


async def run_clients(url: str, count: int, seconds: float) -> dict[str, Any]:
    stop_at = time.monotonic() + seconds
    cpu0 = time.process_time()
    results = [
        {"messages": 0, "bytes": 0, "snapshots": 0, "errors": 0, "closed": None}
        for _ in range(count)
    ]
    await asyncio.gather(*(_client(url, stop_at, r) for r in results))
    return {
        "clients": count,
        # the load generator shares the machine's cores with the program: its CPU share
        "client_cpu": round((time.process_time() - cpu0) / seconds, 3),
        "messages_per_client_per_s": round(
            sum(r["messages"] for r in results) / count / seconds, 1
        ),
        "kib_per_client_per_s": round(sum(r["bytes"] for r in results) / count / seconds / 1024, 1),
        "snapshots_per_client_per_s": round(
            sum(r["snapshots"] for r in results) / count / seconds, 2
        ),
        "order_errors": sum(r["errors"] for r in results),
        "dropped": sum(1 for r in results if r["closed"] is not None),
    }


# ---- the benchmark -----------------------------------------------------------------------


def _window(server: Server) -> dict[str, Any]:
    """One window: lag, bars/s and the program's CPU over PHASE_SECONDS."""
    url = server.url
    load = os.getloadavg()[0]
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
        "load_1m": round((load + os.getloadavg()[0]) / 2, 2),
    }
    # CPU per bar: under CPU contention the loop runs fewer bars, so CPU per unit of work
    # is the fairer comparison than CPU per second.
    row["program_cpu_ms_per_bar"] = (
        round(cpu * 1e3 / row["bars_per_s"], 2) if row["bars_per_s"] else None
    )
    return row


def _run(clients: int) -> list[dict[str, Any]]:
    """One program run with ``clients`` connected throughout: its ``PHASES`` windows."""
    with tempfile.TemporaryDirectory() as tmp, program(SPEED, Path(tmp)) as (server, _):
        time.sleep(WARMUP_SECONDS - 1.5)
        proc = None
        if clients:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.benchmarks.bench_events",
                    "--clients",
                    server.url,
                    str(clients),
                    str(PHASES * (PHASE_SECONDS + 0.5) + 3),
                ],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                text=True,
            )
        time.sleep(1.5)  # all connected and past their first snapshot
        rows = [_window(server) for _ in range(PHASES)]
        if proc is not None:
            out, _ = proc.communicate(timeout=120)
            seen = orjson.loads(out.strip().splitlines()[-1])
            for row in rows:
                row.update(seen)
        return rows


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
    for _ in range(PAIRS):
        for clients in (0, CLIENTS):
            runs[clients].extend(_run(clients))
    return {
        "machine": machine(),
        "speed": float(SPEED),
        "phase_seconds": PHASE_SECONDS,
        "repetitions": PAIRS * PHASES,
        "pairs_of_runs": PAIRS,
        "windows_per_run": PHASES,
        "results": {str(k): {"median": median_of(v), "runs": v} for k, v in runs.items()},
    }


def table(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [
        f"Speed {report['speed']:g} (stress), {report['phase_seconds']} s windows, median of "
        f"{report['repetitions']} ({report.get('pairs_of_runs', '?')} program runs per row, "
        f"{report.get('windows_per_run', '?')} windows each); {m.get('cores', '?')} cores, "
        f"Python {m.get('python', '?')}, {m.get('loop', '?')}.",
        "",
        "| /events clients | load (1 min) | loop lag p50 | loop lag p99 | bars/s | program CPU "
        "| CPU ms/bar | messages/client/s | KiB/client/s | snapshots/client/s "
        "| client process CPU "
        "| dropped | out of order |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for clients, data in report["results"].items():
        r = data["median"]
        lines.append(
            f"| {clients} | {r.get('load_1m', '-')} | {r.get('p50_ms', '-')} ms | "
            f"{r.get('p99_ms', '-')} ms | "
            f"{r.get('bars_per_s', '-')} | {r.get('program_cpu', '-')} | "
            f"{r.get('program_cpu_ms_per_bar', '-')} | "
            f"{r.get('messages_per_client_per_s', '-')} | {r.get('kib_per_client_per_s', '-')} | "
            f"{r.get('snapshots_per_client_per_s', '-')} | {r.get('client_cpu', '-')} | "
            f"{r.get('dropped', '-')} | "
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

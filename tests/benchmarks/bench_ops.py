"""Benchmarks of the operations layer (run with ``make bench``; not part of ``make test``).

Speed is measured here, never asserted in tests. Two measurements:

1. **Snapshot cost on the strategy's path**: the real HedgeGridV1 in a
   BacktestEngine with the real metrics listener subscribed, timed with and
   without snapshots, so the difference is what publishing (build the frozen
   snapshot + update every metric) costs per event.
2. **HTTP latency on the live loop**: the real program with ops enabled on the
   offline market at high speed; sequential and concurrent requests from a client
   in this process, timed end to end (loopback included).

Prints one JSON object with the numbers. ``python -m tests.benchmarks.bench_ops [SPEED]``
sets the simulated market's speed for the HTTP part (default 10, the shipped default).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from hedgegrid_ops.backtest import run_backtest
from hedgegrid_ops.config import load_strategy_config, load_venue_config
from hedgegrid_ops.logs import configure_logging
from hedgegrid_ops.ops.metrics import OpsMetrics
from hedgegrid_ops.snapshot import SnapshotStore
from tests.support.program import STRATEGY_YAML, VENUE_YAML, running_program

BACKTEST_MINUTES = 240
SEQUENTIAL_REQUESTS = 500
CONCURRENT_REQUESTS = 200


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {
        "n": len(ordered),
        "p50_ms": round(pick(0.50) * 1e3, 3),
        "p95_ms": round(pick(0.95) * 1e3, 3),
        "p99_ms": round(pick(0.99) * 1e3, 3),
        "max_ms": round(ordered[-1] * 1e3, 3),
        "mean_ms": round(statistics.fmean(ordered) * 1e3, 3),
    }


def bench_snapshot_cost() -> dict[str, Any]:
    strategy_cfg = load_strategy_config(STRATEGY_YAML)
    venue_cfg = load_venue_config(VENUE_YAML)
    timings: dict[str, float] = {}
    publishes = 0
    for label in ("without_snapshots", "with_snapshots_and_metrics"):
        store = None
        if label == "with_snapshots_and_metrics":
            store = SnapshotStore()
            metrics = OpsMetrics("BTCUSDT-PERP.BINANCE")
            store.subscribe(metrics.update)

            def count(_snap: Any) -> None:
                nonlocal publishes
                publishes += 1

            store.subscribe(count)
        started = time.perf_counter()
        run = run_backtest(strategy_cfg, venue_cfg, minutes=BACKTEST_MINUTES, store=store)
        timings[label] = time.perf_counter() - started
        run.engine.dispose()
    extra = timings["with_snapshots_and_metrics"] - timings["without_snapshots"]
    return {
        "simulated_minutes": BACKTEST_MINUTES,
        "seconds": {k: round(v, 3) for k, v in timings.items()},
        "snapshots_published": publishes,
        "cost_per_snapshot_us": round(extra / publishes * 1e6, 1) if publishes else None,
    }


async def _timed(session: aiohttp.ClientSession, method: str, url: str, **kw: Any) -> float:
    started = time.perf_counter()
    async with session.request(method, url, **kw) as resp:
        await resp.read()
        if resp.status != 200:
            raise RuntimeError(f"{method} {url} -> {resp.status}")
    return time.perf_counter() - started


async def _http(api: str) -> dict[str, Any]:
    results: dict[str, Any] = {}
    async with aiohttp.ClientSession() as session:
        for path in ("/health", "/status", "/ladders", "/orders", "/metrics"):
            samples = [
                await _timed(session, "GET", f"{api}{path}") for _ in range(SEQUENTIAL_REQUESTS)
            ]
            results[f"GET {path} sequential"] = _percentiles(samples)
        samples = await asyncio.gather(
            *(_timed(session, "GET", f"{api}/status") for _ in range(CONCURRENT_REQUESTS))
        )
        results[f"GET /status {CONCURRENT_REQUESTS} concurrent"] = _percentiles(list(samples))
        samples = [
            await _timed(session, "POST", f"{api}/set-throttle", json={"throttle": t / 100})
            for t in range(100)
        ]
        results["POST /set-throttle (through the command bus)"] = _percentiles(samples)
    return results


def _server_side(access_log: Path) -> dict[str, Any]:
    """Handling time as the server logged it (no client or loopback overhead)."""
    by_route: dict[str, list[float]] = {}
    for line in access_log.read_text().splitlines():
        record = orjson.loads(line)
        key = f"{record['method']} {record['route']}"
        by_route.setdefault(key, []).append(record["duration_ms"] / 1e3)
    return {key: _percentiles(samples) for key, samples in sorted(by_route.items())}


def bench_http(speed: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, running_program(Path(tmp), "--speed", speed) as svc:
        time.sleep(3)  # let it trade so the snapshot has orders and positions
        client_side = asyncio.run(_http(svc.api_url))
        svc.stop()
        return {
            "speed_sim_minutes_per_s": float(speed),
            "client_observed": client_side,
            "server_logged": _server_side(svc.log_dir / "api_access.log"),
        }


def main() -> int:
    # The backtest's strategy logs through structlog: keep stdout for the report.
    configure_logging(Path(tempfile.mkdtemp(prefix="hedgegrid-bench-")), stdout=False)
    report = {
        "python": sys.version.split()[0],
        "snapshot": bench_snapshot_cost(),
        "http": bench_http(sys.argv[1] if len(sys.argv) > 1 else "10"),
    }
    sys.stdout.buffer.write(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

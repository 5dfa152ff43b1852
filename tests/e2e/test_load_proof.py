"""Load proof: 20 concurrent clients on GET and POST while the strategy runs fast.

The real program replays the committed 300-minute kline file (so the number of bars
that must be processed is known) at a speed that spreads it over the load window,
while 20 clients loop over GET /status, /orders, /ladders, /health, /metrics and
POST /set-throttle, /start. Afterwards:

- every bar of the file was processed (``bars_processed`` == 300);
- /status equals the account: each leg's quantity is the sum of its fills in
  ``trading.log``, the balance moved by exactly the realized PnL, and /metrics
  equals /status;
- no request got a server error.

``make test`` runs it for about 8 s; the 30 s version the issue asks for is behind the
``soak`` marker (``make soak``).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

import aiohttp
import orjson
import pytest
import yaml

from tests.support.harness import Api, Journal, assert_metrics_match_status
from tests.support.polling import poll
from tests.support.program import ROOT, STRATEGY_YAML, RunningService
from tests.support.program import running_program as running_service

pytestmark = pytest.mark.e2e

KLINES = ROOT / "tests" / "data" / "btcusdt_1m_300.csv"
BARS = 300
CLIENTS = 20
START_BALANCE = Decimal("10000")
GETS = ("/status", "/orders", "/ladders", "/health", "/metrics")


def frozen_after_replay(tmp: Path) -> Path:
    """Default strategy, but no stale-data halt: the account must stay still once read."""
    config = yaml.safe_load(STRATEGY_YAML.read_text())
    config["risk"]["stale_data"] = None
    path = tmp / "strategy.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


async def client_loop(
    api: Api, n: int, until: float, codes: Counter[int], latencies: list[float]
) -> None:
    i = 0
    while time.monotonic() < until:
        i += 1
        started = time.monotonic()
        if i % 4 == 0:
            throttle = 0.9 if (n + i) % 8 else 1.0
            reply = await api.post("/set-throttle", {"throttle": throttle})
        elif i % 9 == 0:
            reply = await api.post("/start")
        else:
            reply = await api.get(GETS[(n + i) % len(GETS)])
        latencies.append(time.monotonic() - started)
        codes[reply.status] += 1


def fills_per_leg(service: RunningService) -> dict[str, Decimal]:
    legs = {"LONG": Decimal(0), "SHORT": Decimal(0)}
    for line in (service.log_dir / "trading.log").read_bytes().splitlines():
        record = orjson.loads(line)
        if record.get("event") != "order_filled":
            continue
        leg = record["position_id"].rsplit("-", 1)[1]
        qty = Decimal(str(record["qty"]))
        legs[leg] += qty if record["side"] == "buy" else -qty
    return {"LONG": legs["LONG"], "SHORT": -legs["SHORT"]}


async def run_load(tmp: Path, seconds: float) -> None:
    speed = str(round(BARS / seconds, 3))
    args = (
        "--strategy-config",
        str(frozen_after_replay(tmp)),
        "--replay",
        str(KLINES),
        "--hold-after-replay",
        "--speed",
        speed,
    )
    with running_service(tmp, *args) as service:
        codes: Counter[int] = Counter()
        latencies: list[float] = []
        connector = aiohttp.TCPConnector(limit=CLIENTS)
        async with aiohttp.ClientSession(connector=connector) as session:
            api = Api(service.api_url, session, Journal("load"))

            async def bars() -> int:  # 503 until the strategy's first snapshot
                reply = await api.get("/status")
                return reply.json()["counters"]["bars_processed"] if reply.status == 200 else 0

            await poll(bars, lambda n: n > 0, 30, "bars")
            until = time.monotonic() + seconds
            await asyncio.gather(
                *(client_loop(api, n, until, codes, latencies) for n in range(CLIENTS))
            )
            status = await poll(
                api.status,
                lambda s: s["counters"]["bars_processed"] >= BARS,
                60,
                "the replay to be fully processed",
            )
            await asyncio.sleep(1.0)  # let fills of the last bar settle
            status = await api.status()
            ladders = await api.ok("GET", "/ladders")
            metrics = await api.metrics_text()
        latencies.sort()
        total = sum(codes.values())
        print(
            f"load {seconds:g}s x {CLIENTS} clients: {total} requests "
            f"({total / seconds:.0f}/s), codes {dict(codes)}, "
            f"p50 {latencies[len(latencies) // 2] * 1000:.1f} ms, "
            f"p99 {latencies[int(len(latencies) * 0.99)] * 1000:.1f} ms"
        )
        assert not [c for c in codes if c >= 500], dict(codes)
        assert codes[200] > CLIENTS * 5

        assert status["counters"]["bars_processed"] == BARS  # every bar, none twice
        legs = fills_per_leg(service)
        pos = status["positions"]
        assert Decimal(str(pos["long"]["quantity"])) == legs["LONG"]
        assert Decimal(str(pos["short"]["quantity"])) == legs["SHORT"]
        moved = Decimal(str(status["balance_usdt"])) - START_BALANCE
        assert abs(moved - Decimal(str(status["pnl"]["realized"]))) < Decimal("0.000001")
        assert_metrics_match_status(metrics, status, ladders)
        assert service.stop() == 0


async def test_twenty_clients_while_trading_fast(tmp_path: Path) -> None:
    await run_load(tmp_path, 8)


@pytest.mark.soak
async def test_twenty_clients_for_thirty_seconds(tmp_path: Path) -> None:
    await run_load(tmp_path, 30)

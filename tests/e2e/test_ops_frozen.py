"""The real service after its market stopped: exact metric checks, the auth matrix, no key leaks.

The service replays the committed 300-minute kline file at ``--speed 100`` with an
API key from ``HEDGEGRID_API_KEY``. Once the replay is exhausted no more market data
arrives, so nothing publishes a new snapshot: /metrics must then equal /status
exactly, with no bracketing or tolerance, and /health must say "degraded".
"""

from __future__ import annotations

import math
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
import yaml

from tests.spec_contract import SPEC_METRICS
from tests.support.harness import (
    COMMAND_ROUTES,
    Api,
    Journal,
    assert_metrics_match_status,
    check_logs_parse,
)
from tests.support.polling import poll
from tests.support.program import ROOT, STRATEGY_YAML, RunningService, running_program
from tests.support.prometheus import parse_prometheus

pytestmark = pytest.mark.e2e

KLINES = ROOT / "tests" / "data" / "btcusdt_1m_300.csv"
API_KEY = f"k3y-{uuid.uuid4().hex}"
WRONG_KEY = f"wr0ng-{uuid.uuid4().hex}"
MAX_BAR_AGE = 1.0


@dataclass
class Frozen:
    service: RunningService
    journal: Journal
    last_status: dict[str, Any] | None = None


@pytest.fixture(scope="module")
def frozen(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Frozen]:
    tmp = tmp_path_factory.mktemp("ops_frozen")
    # This module is about a frozen market being served; the stale-data halt (which
    # would end the freeze with a new snapshot) has its own tests.
    config = yaml.safe_load(STRATEGY_YAML.read_text())
    config["risk"]["stale_data"] = None
    strategy = tmp / "no_stale_halt.yaml"
    strategy.write_text(yaml.safe_dump(config))
    with running_program(
        tmp,
        "--strategy-config",
        str(strategy),
        "--replay",
        str(KLINES),
        "--hold-after-replay",
        "--speed",
        "100",
        "--max-bar-age",
        str(MAX_BAR_AGE),
        env={"HEDGEGRID_API_KEY": API_KEY},
    ) as service:
        yield Frozen(service, Journal("frozen"))


@pytest.fixture
async def api(frozen: Frozen) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(frozen.service.api_url, session, frozen.journal, api_key=API_KEY)


async def until_frozen(api: Api) -> dict[str, Any]:
    """Wait for the replay to end: /health turns degraded once no bar came for MAX_BAR_AGE."""

    async def health() -> dict[str, Any]:
        reply = await api.get("/health", key=None)
        return {"code": reply.status, **reply.json()}

    verdict = await poll(health, lambda h: h["status"] == "degraded", 30, "the replay to end")
    assert verdict["code"] == 503
    assert verdict["bar_age_seconds"] > MAX_BAR_AGE and verdict["trading_state"] == "running"
    assert "last bar" in verdict["reason"]
    return verdict


async def test_metrics_equal_status_exactly_once_the_market_stopped(api: Api) -> None:
    await until_frozen(api)
    status = await api.status()
    ladders = await api.ok("GET", "/ladders")
    text = await api.metrics_text()
    again = await api.status()
    assert again == status, "a snapshot was published after the replay ended"
    assert ladders["timestamp"] == status["timestamp"]
    # The replay traded: every kline became a bar and the account moved.
    assert status["counters"]["bars_processed"] >= 290
    assert status["balance_usdt"] != 10000.0
    assert status["counters"]["fills_buy_maker"] + status["counters"]["fills_sell_maker"] > 0
    samples = parse_prometheus(text)
    assert set(SPEC_METRICS) <= {s.name for s in samples}
    assert_metrics_match_status(text, status, ladders)


PROTECTED = [
    ("GET", "/status", None),
    ("GET", "/ladders", None),
    ("GET", "/orders", None),
    ("POST", "/set-throttle", {"throttle": 0.5}),
    ("POST", "/stop", None),
    ("POST", "/start", None),
    ("POST", "/flatten", {"side": "both"}),
]
OPEN = ["/health", "/metrics", "/openapi.json", "/docs"]


async def test_auth_matrix_missing_wrong_and_right_key(api: Api, frozen: Frozen) -> None:
    before = await api.status()
    for method, path, body in PROTECTED:
        for key in (None, WRONG_KEY):
            reply = await api.call(method, path, json_body=body, key=key)
            assert reply.status == 401, (method, path, key, reply.body)
            assert reply.json()["error"] == "unauthorized"
            assert reply.json()["request_id"] == reply.request_id
            assert reply.headers.get("WWW-Authenticate") == "X-API-Key"
    assert await api.status() == before, "a refused request changed the state"

    for path in OPEN:
        reply = await api.get(path, key=None)
        assert reply.status != 401, (path, reply.body)
        assert reply.status == (503 if path == "/health" else 200), (path, reply.status)

    for method, path, body in PROTECTED:
        reply = await api.call(method, path, json_body=body)
        assert reply.status == 200, (method, path, reply.body)
    # The right key really ran the commands: the last one flattened both sides.
    flat = await poll(
        api.status,
        lambda s: s["trading_state"] == "paused" and s["counters"]["flattens"] == 1,
        10,
        "the flatten to complete",
    )
    assert flat["throttle"] == 0.5
    assert flat["positions"]["long"]["quantity"] == flat["positions"]["short"]["quantity"] == 0
    frozen.last_status = flat


def test_summary_matches_status_and_the_key_is_never_logged(frozen: Frozen) -> None:
    assert frozen.last_status is not None, "run after the auth matrix test"
    service = frozen.service
    assert service.stop() == 0
    summary = service.lines[-1]
    assert summary["event"] == "run_summary"
    last = frozen.last_status
    # Nothing traded after the flatten (no market data): the account the summary reads
    # at shutdown is the one /status showed.
    assert math.isclose(summary["balance"], last["balance_usdt"], abs_tol=1e-6)
    assert math.isclose(summary["realized_pnl"], last["pnl"]["realized"], abs_tol=1e-6)
    assert summary["long_qty"] == summary["short_qty"] == 0.0
    assert summary["bars_processed"] == last["counters"]["bars_processed"]
    assert math.isclose(summary["balance"], 10000.0 + summary["realized_pnl"], abs_tol=1e-6)

    logs = check_logs_parse(service.log_dir)
    stderr = service.proc.stderr.read() if service.proc.stderr else ""
    for secret in (API_KEY, WRONG_KEY):
        for path in service.log_dir.rglob("*"):
            if path.is_file():
                assert secret.encode() not in path.read_bytes(), f"{secret} in {path.name}"
        assert secret not in str(service.lines), "key on stdout"
        assert secret not in stderr
    access = {ln["request_id"]: ln for ln in logs["api_access.log"]}
    audit = {ln["request_id"]: ln for ln in logs["audit.log"]}
    for reply in frozen.journal.replies:
        assert access[reply.request_id]["status"] == reply.status
        if reply.method == "POST" and reply.path in COMMAND_ROUTES:
            line = audit[reply.request_id]
            assert line["key_used"] is (reply.status != 401)
            assert line["outcome"] == ("unauthorized" if reply.status == 401 else "ok")

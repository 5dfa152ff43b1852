"""409 and "down" on the real service, from a real fault: the strategy halts at start-up.

A strategy config naming an instrument the venue does not list is a mistake an
operator can make; ``run`` refuses it before start-up, and behind that check the
strategy halts in ``on_start`` while the node and the API keep running (reached
here through ``tests.unlisted_instrument``, which skips only the CLI's check).
That is a state in which /start and /flatten make no sense, so both must answer
409 — and change nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import orjson
import pytest

from tests.support.harness import Api, Journal
from tests.support.polling import poll
from tests.support.program import STRATEGY_YAML, RunningService, running_program
from tests.support.prometheus import parse_prometheus

pytestmark = pytest.mark.e2e

UNLISTED = "ETHUSDT-PERP.BINANCE"


@pytest.fixture(scope="module")
def halted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    tmp = tmp_path_factory.mktemp("ops_halted")
    text = STRATEGY_YAML.read_text()
    assert "BTCUSDT-PERP.BINANCE" in text, "fixture drift: the default config changed instrument"
    config = tmp / "eth.yaml"
    config.write_text(text.replace("BTCUSDT-PERP.BINANCE", UNLISTED))
    # `run` itself refuses the unlisted instrument before start-up (exit 2); this entry
    # point skips only that pre-check so the strategy's own halt can be exercised.
    with running_program(
        tmp, "--strategy-config", str(config), entry="tests.unlisted_instrument"
    ) as service:
        yield service


@pytest.fixture
async def api(halted: RunningService) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(halted.api_url, session, Journal("halted"))


async def test_start_and_flatten_conflict_while_halted_and_change_nothing(
    api: Api, halted: RunningService
) -> None:
    status = await poll(
        api.status, lambda s: s["trading_state"] == "halted", 20, "the strategy to halt"
    )
    assert status["running"] is False and UNLISTED in status["state_reason"]

    health = await api.get("/health")
    assert health.status == 503
    assert health.json()["status"] == "down" and "halted" in health.json()["reason"]

    conflicts = [
        await api.post("/start"),
        await api.post("/flatten", {"side": "both"}),
        await api.post("/flatten", {"side": "long"}),
    ]
    for reply in conflicts:
        assert reply.status == 409, (reply.path, reply.body)
        body = reply.json()
        assert body["error"] == "conflict" and "halted" in body["detail"]
        assert body["request_id"] == reply.request_id
    stop = await api.ok("POST", "/stop")
    assert (stop["status"], stop["trading_state"], stop["cancelled_orders"]) == (
        "already_stopped",
        "halted",
        0,
    )
    after = await api.status()
    assert after["trading_state"] == "halted" and after["counters"] == status["counters"]
    assert after["open_orders"] == 0 and after["state_reason"] == status["state_reason"]

    samples = parse_prometheus(await api.metrics_text())
    states = {s.labels["state"]: s.value for s in samples if s.name == "hedgegrid_trading_state"}
    assert states["halted"] == 1.0 and sum(states.values()) == 1.0
    hits = [
        s
        for s in samples
        if s.name == "hedgegrid_api_requests_total" and s.labels.get("status") == "409"
    ]
    assert sum(s.value for s in hits) == len(conflicts)

    async def conflict_audits() -> list[dict]:
        path: Path = halted.log_dir / "audit.log"
        lines = [orjson.loads(ln) for ln in path.read_bytes().splitlines() if ln.strip()]
        return [ln for ln in lines if ln["outcome"] == "conflict"]

    audits = await poll(conflict_audits, lambda a: len(a) >= 3, 5, "conflict audit lines")
    assert sorted(a["request_id"] for a in audits) == sorted(r.request_id for r in conflicts)
    assert {a["action"] for a in audits} == {"start", "flatten"}

"""The kill switch, stale data and the state directory on the real program (offline market).

Each breaker is switched on alone with a limit the fast simulated market crosses in
seconds; the test watches the whole reaction over real HTTP: ``halted`` with the
breaker's name and measured value, both legs flat, /health 503 with the reason, the
trip metric, the audit line. Then the operator's side: a restart on the same state
directory stays halted (and keeps a pause and a throttle), and only POST /start
trades again. A damaged state directory stops start-up with one line and exit 2.

Every run also posts to a webhook receiver on a real socket (``--notify-url``): each
trip arrives as one message naming the breaker and its measured value, and its flatten
as a second once both legs are flat. A receiver answering 500, then one nobody listens
on, are counted as failed deliveries while the trip, the flatten, the restart and the
re-arm go on exactly as without them.
"""

from __future__ import annotations

import re
import signal
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import yaml

from tests.support.harness import Api, Journal
from tests.support.polling import poll
from tests.support.ports import free_port
from tests.support.program import ROOT, STRATEGY_YAML, RunningService, run_program
from tests.support.program import running_program as running_service
from tests.support.prometheus import parse_prometheus
from tests.support.webhook import SECRET, webhook_receiver
from tests.support.webhook import notification_counts as webhook_counts

pytestmark = pytest.mark.e2e

KLINES = ROOT / "tests" / "data" / "btcusdt_1m_300.csv"
OFF: dict[str, Any] = {
    "max_drawdown_fraction": None,
    "max_session_loss_fraction": None,
    "max_position_qty": None,
    "max_position_notional_usdt": None,
    "max_margin_ratio": None,
    "stale_data": None,
}


def strategy_with(tmp: Path, **risk: Any) -> Path:
    config = yaml.safe_load(STRATEGY_YAML.read_text())
    config["risk"] = {**OFF, **risk}
    path = tmp / "strategy.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@asynccontextmanager
async def api_of(service: RunningService, name: str) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        api = Api(service.api_url, session, Journal(name))

        async def code() -> int:  # 503 until the strategy's first snapshot
            return (await api.get("/status")).status

        await poll(code, lambda c: c == 200, 30, "the first snapshot")
        yield api


def audit_lines(service: RunningService) -> list[dict[str, Any]]:
    path = service.log_dir / "audit.log"
    if not path.exists():
        return []
    return [orjson.loads(ln) for ln in path.read_bytes().splitlines() if ln.strip()]


async def wait_halted(api: Api, timeout: float = 60) -> dict[str, Any]:
    return await poll(api.status, lambda s: s["trading_state"] == "halted", timeout, "a trip")


async def check_trip(api: Api, service: RunningService, breaker: str) -> dict[str, Any]:
    """The common reaction to a trip; returns the halted /status."""
    status = await wait_halted(api)
    reason = status["state_reason"]
    assert reason.startswith(f"{breaker}: measured "), reason
    ks = status["kill_switch"]
    assert ks["tripped"] and ks["breaker"] == breaker and ks["reason"] == reason
    assert ks["trips"] == {breaker: 1}
    health = await api.get("/health")
    assert health.status == 503 and breaker in health.json()["reason"]
    samples = parse_prometheus(await api.metrics_text())
    trips = {
        s.labels["breaker"]: s.value
        for s in samples
        if s.name == "hedgegrid_kill_switch_trips_total"
    }
    assert trips[breaker] == 1.0 and sum(trips.values()) == 1.0  # the others exported at 0
    tripped = [s.value for s in samples if s.name == "hedgegrid_kill_switch_tripped"]
    assert tripped == [1.0]
    audits = await poll(
        lambda: _async(audit_lines(service)),
        lambda lines: any(ln.get("source") == "kill_switch" for ln in lines),
        5,
        "the kill-switch audit line",
    )
    (trip,) = [ln for ln in audits if ln.get("source") == "kill_switch"]
    assert (trip["action"], trip["outcome"], trip["breaker"]) == ("trip", "halted", breaker)
    return status


async def _async[T](value: T) -> T:
    return value


async def notification_counts(api: Api) -> dict[tuple[str, str], float]:
    return webhook_counts(await api.metrics_text())


def assert_secret_never_logged(service: RunningService) -> None:
    for path in service.log_dir.glob("*.log"):
        assert SECRET not in path.read_text(errors="replace"), path
    assert not any(SECRET in str(line) for line in service.lines)


async def wait_flat(api: Api) -> dict[str, Any]:
    def flat(s: dict[str, Any]) -> bool:
        pos = s["positions"]
        return (
            pos["long"]["quantity"] == 0 and pos["short"]["quantity"] == 0 and not s["open_orders"]
        )

    return await poll(api.status, flat, 30, "both legs flat with no order left")


BREAKERS = [
    ("max_position_qty", {"max_position_qty": "0.006"}),
    ("max_position_notional", {"max_position_notional_usdt": 300.0}),
    ("max_margin_ratio", {"max_margin_ratio": 0.002}),
    ("max_drawdown", {"max_drawdown_fraction": 0.0003}),
    ("max_session_loss", {"max_session_loss_fraction": 0.0003}),
]


@pytest.mark.parametrize(("breaker", "risk"), BREAKERS, ids=[b for b, _ in BREAKERS])
async def test_each_breaker_flattens_and_halts(tmp_path: Path, breaker: str, risk: dict) -> None:
    config = strategy_with(tmp_path, **risk)
    with (
        webhook_receiver() as receiver,
        running_service(
            tmp_path,
            *("--strategy-config", str(config), "--speed", "60"),
            *("--notify-url", receiver.url, "--notify-name", f"ks-{breaker}"),
        ) as svc,
    ):
        async with api_of(svc, breaker) as api:
            status = await check_trip(api, svc, breaker)
            assert status["counters"]["flattens"] == 1
            flat = await wait_flat(api)
            assert flat["trading_state"] == "halted"  # flat, and still halted
            prefix = f"[hedgegrid ks-{breaker} {status['instrument']}] "
            texts = await receiver.arrived(
                lambda t: len(t) >= 2, 30, "the trip and its flatten at the webhook"
            )
            # The legs as the trip saw them, before its flatten closed them.
            assert re.fullmatch(
                re.escape(f"{prefix}KILL SWITCH tripped: {status['state_reason']}; ")
                + r"flattening both legs \(long [0-9.e-]+, short [0-9.e-]+\); "
                + re.escape("trading halted until POST /start"),
                texts[0],
            ), texts[0]
            assert f"{breaker}: measured " in texts[0]
            assert texts[1] == f"{prefix}FLATTEN done after the kill switch: both legs flat"
            counts = await poll(
                lambda: notification_counts(api),
                lambda c: c[("delivered", "flatten")] == 1,
                10,
                "the deliveries to be counted",
            )
            assert counts[("delivered", "kill_switch")] == 1
            submitted = (
                flat["counters"]["orders_submitted_buy"] + flat["counters"]["orders_submitted_sell"]
            )
            await poll(
                api.status,
                lambda s: s["counters"]["bars_processed"] > flat["counters"]["bars_processed"] + 20,
                30,
                "more bars",
            )
            later = await api.status()
            assert later["trading_state"] == "halted" and later["open_orders"] == 0
            assert (
                later["counters"]["orders_submitted_buy"]
                + later["counters"]["orders_submitted_sell"]
                == submitted
            ), "orders were sent while halted"
        assert len(receiver.texts()) == 2, receiver.texts()  # nothing more while halted
        assert_secret_never_logged(svc)


async def test_stale_data_after_a_replay_ends(tmp_path: Path) -> None:
    stale = {"max_age_seconds": 5, "cancel_exits": False, "resume_when_fresh": False}
    config = strategy_with(tmp_path, stale_data=stale)
    args = ("--strategy-config", str(config), "--replay", str(KLINES), "--hold-after-replay")
    with running_service(tmp_path, *args, "--speed", "60") as svc:
        async with api_of(svc, "stale") as api:
            status = await check_trip(api, svc, "stale_data")
            assert status["counters"]["bars_processed"] == 300  # every bar of the file
            assert status["counters"]["flattens"] == 0  # no blind close on a dead feed
            orders = (await api.ok("GET", "/orders"))["orders"]
            assert not [
                o for o in orders if o["role"] == "grid" and o["status"] != "PENDING_CANCEL"
            ]
            ended = [r for r in svc.lines if r.get("event") == "replay_finished"]
            assert ended and ended[0]["minutes"] == 300
        assert svc.stop() == 0


async def test_halt_survives_a_restart_until_start(tmp_path: Path) -> None:
    config = strategy_with(tmp_path, max_position_qty="0.006")
    state_dir = tmp_path / "state"
    args = ("--strategy-config", str(config), "--speed", "60", "--state-dir", str(state_dir))
    # The first run's webhook answers 500: the trip still flattens and halts, and the
    # message is counted as failed once its retries are spent.
    with (
        webhook_receiver(status=500) as failing,
        running_service(tmp_path / "first", *args, "--notify-url", failing.url) as svc,
    ):
        async with api_of(svc, "first") as api:
            first = await check_trip(api, svc, "max_position_qty")
            await wait_flat(api)
            counts = await poll(
                lambda: notification_counts(api),
                lambda c: c[("failed", "http_status")] >= 1,
                30,
                "the 500s to be counted as a failed delivery",
            )
            assert counts[("delivered", "kill_switch")] == 0
            assert failing.attempts >= 4  # the first try and three retries
        assert svc.stop() == 0
        assert_secret_never_logged(svc)

    # The second run's webhook is a port nobody listens on; the restored halt is not
    # announced again, and the operator's /start and a flatten go through regardless.
    nobody = f"http://127.0.0.1:{free_port()}/services/{SECRET}"
    with running_service(tmp_path / "second", *args, "--notify-url", nobody) as svc:
        async with api_of(svc, "second") as api:
            status = await api.status()
            assert status["trading_state"] == "halted"
            assert status["state_reason"] == first["state_reason"]
            assert status["kill_switch"]["tripped"] and status["kill_switch"]["trips"] == {
                "max_position_qty": 1
            }
            # Bars flow but nothing trades while halted.
            await poll(api.status, lambda s: s["counters"]["bars_processed"] > 30, 30, "bars")
            halted = await api.status()
            assert halted["trading_state"] == "halted"
            assert halted["counters"]["orders_submitted_buy"] == 0
            assert halted["counters"]["orders_submitted_sell"] == 0
            assert (await api.get("/health")).status == 503
            started = await api.ok("POST", "/start")
            assert (started["previous_state"], started["trading_state"]) == ("halted", "running")
            running = await poll(
                api.status,
                lambda s: s["counters"]["orders_submitted_buy"] > 0,
                30,
                "the grid to trade again",
            )
            assert not running["kill_switch"]["tripped"]
            assert running["kill_switch"]["trips"] == {"max_position_qty": 1}
            await api.ok("POST", "/flatten", {"side": "both"})  # something to announce
            await poll(
                lambda: notification_counts(api),
                lambda c: c[("failed", "connection")] >= 1,
                30,
                "the unreachable webhook to be counted as a failed delivery",
            )
            bars = (await api.status())["counters"]["bars_processed"]
            await poll(
                api.status,
                lambda s: s["counters"]["bars_processed"] > bars + 5,
                30,
                "bars to keep flowing",
            )
        assert svc.stop() == 0
        assert_secret_never_logged(svc)

    rows = (
        sqlite3.connect(state_dir / "state.sqlite3").execute("SELECT entry FROM audit").fetchall()
    )
    entries = [orjson.loads(r[0]) for r in rows]
    assert [e["action"] for e in entries if e.get("source") == "kill_switch"] == ["trip", "rearm"]
    assert any(e.get("action") == "start" and e.get("outcome") == "ok" for e in entries)


async def test_pause_and_throttle_survive_a_restart(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    args = ("--state-dir", str(state_dir))
    with running_service(tmp_path / "first", *args) as svc:
        async with api_of(svc, "first") as api:
            await poll(api.status, lambda s: s["trading_state"] == "running", 30, "running")
            await api.ok("POST", "/set-throttle", {"throttle": 0.3})
            await api.ok("POST", "/stop")
        assert svc.stop(sig=signal.SIGINT) == 0  # Ctrl-C: state committed before the exit
    with running_service(tmp_path / "second", *args) as svc:
        async with api_of(svc, "second") as api:
            await poll(api.status, lambda s: s["counters"]["bars_processed"] > 3, 30, "bars")
            status = await api.status()
            assert status["trading_state"] == "paused" and status["throttle"] == 0.3
            assert status["open_orders"] == 0 or all(
                o["role"] != "grid" for o in (await api.ok("GET", "/orders"))["orders"]
            )


def test_a_damaged_state_directory_stops_start_up(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    (state_dir / "state.sqlite3").write_bytes(b"\x00garbage" * 512)
    proc = run_program(
        "run", "--duration", "5", "--state-dir", str(state_dir), "--log-dir", str(tmp_path)
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "state.sqlite3" in lines[0] and "unreadable state" in lines[0]
    assert "Traceback" not in proc.stderr and proc.stdout == ""

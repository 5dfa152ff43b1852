"""The client sub-commands against the real API app (in-process, real socket).

The commands block (urllib), so each runs in a worker thread while the app keeps
serving on the test's event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import msgspec
import pytest

from hedgegrid_ops.api import Health
from hedgegrid_ops.client_cli import (
    CLIENT_COMMANDS,
    DEFAULT_URL,
    add_client_commands,
    build_parser,
    evaluate_health,
    run_client_command,
)
from hedgegrid_ops.snapshot import TradingState
from tests.support.canned import Canned, CannedServer
from tests.support.inprocess import API_KEY, StateTarget, make_snapshot, serve_ops
from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Outcome:
    code: int
    out: str
    err: str


async def run_cli(*argv: str) -> Outcome:
    args = build_parser().parse_args(argv)
    out, err = io.StringIO(), io.StringIO()
    code = await asyncio.to_thread(run_client_command, args, out=out, err=err)
    return Outcome(code, out.getvalue(), err.getvalue())


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HEDGEGRID_URL", raising=False)
    monkeypatch.delenv("HEDGEGRID_API_KEY", raising=False)


# --------------------------------------------------------------------------- parser


def test_commands_register_on_a_foreign_parser() -> None:
    """cli.py owns the top-level parser and adds its own commands next to these."""
    parser = argparse.ArgumentParser(prog="hedgegrid_ops")
    subparsers = parser.add_subparsers(dest="command", required=True)
    subparsers.add_parser("run")
    add_client_commands(subparsers)
    args = parser.parse_args(["flatten", "--side", "long", "--url", "http://h:1", "--json"])
    assert (args.client_command, args.side, args.url, args.as_json) == (
        "flatten",
        "long",
        "http://h:1",
        True,
    )
    assert not hasattr(parser.parse_args(["run"]), "client_command")
    for name in CLIENT_COMMANDS:
        extra = {"flatten": ["--side", "both"], "throttle": ["0.5"]}.get(name, [])
        assert parser.parse_args([name, *extra]).client_command == name


def test_flatten_needs_an_explicit_side_and_throttle_a_number() -> None:
    parser = build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["flatten"])
    with pytest.raises(SystemExit):
        parser.parse_args(["flatten", "--side", "up"])
    with pytest.raises(SystemExit):
        parser.parse_args(["throttle", "fast"])


# --------------------------------------------------------------------------- queries


async def test_status_table(tmp_path: Path) -> None:
    snap = make_snapshot(throttle=0.6)
    async with serve_ops(tmp_path, snapshot=snap) as ops:
        result = await run_cli("status", "--url", ops.url)
    assert result.code == 0, result.err
    assert snap.instrument_id in result.out
    lines = result.out.splitlines()
    long_row = next(line for line in lines if line.startswith("LONG"))
    assert f"{snap.long.entry_price:,.2f}" in long_row
    assert f"{snap.long.inventory_usdt:,.2f}" in long_row
    short_row = next(line for line in lines if line.startswith("SHORT"))
    assert f"{snap.short.unrealized_pnl:,.2f}" in short_row
    assert f"total {snap.total_pnl:,.2f}" in result.out
    assert "Throttle" in result.out and "0.60" in result.out
    assert f"{snap.maker_ratio * 100:.1f}%" in result.out


async def test_status_json_is_the_servers_body(tmp_path: Path) -> None:
    async with serve_ops(tmp_path, snapshot=make_snapshot()) as ops:
        result = await run_cli("status", "--url", ops.url, "--json")
        async with ops.http.get(ops.url + "/status") as resp:
            served = await resp.json()
    assert result.code == 0
    assert json.loads(result.out) == served


async def test_ladders_and_orders_tables(tmp_path: Path) -> None:
    snap = make_snapshot()
    async with serve_ops(tmp_path, snapshot=snap) as ops:
        ladders = await run_cli("ladders", "--url", ops.url)
        orders = await run_cli("orders", "--url", ops.url)
    assert ladders.code == 0 and orders.code == 0
    assert "Long ladder:" in ladders.out and "Short ladder:" in ladders.out
    for rung in (*snap.long_ladder, *snap.short_ladder):
        assert rung.client_order_id in ladders.out and f"{rung.price:,.2f}" in ladders.out
    for order in snap.orders:
        assert order.client_order_id in orders.out and order.role in orders.out
    assert orders.out.rstrip().endswith(f"{len(snap.orders)} open orders")


# --------------------------------------------------------------------------- commands


async def test_flatten_and_throttle(tmp_path: Path) -> None:
    target = StateTarget(positions={"LONG": 0.1, "SHORT": 0.2}, throttle=0.75)
    async with serve_ops(tmp_path, target=target) as ops:
        flat = await run_cli("flatten", "--side", "long", "--url", ops.url)
        thr = await run_cli("throttle", "0.5", "--url", ops.url)
    assert flat.code == 0 and thr.code == 0
    assert "closing LONG" in flat.out and "flattening long" in flat.out
    assert "0.75 -> 0.50" in thr.out
    assert [(name, arg) for name, arg, _ in target.calls] == [
        ("flatten", "long"),
        ("set_throttle", 0.5),
    ]


async def test_stop_then_start(tmp_path: Path) -> None:
    async with serve_ops(tmp_path, target=StateTarget(state=TradingState.RUNNING)) as ops:
        stop = await run_cli("stop", "--url", ops.url)
        start = await run_cli("start", "--url", ops.url, "--json")
    assert stop.code == 0 and "stopped: running -> paused" in stop.out
    assert json.loads(start.out)["status"] == "started"


async def test_server_refusal_exits_1_with_detail(tmp_path: Path) -> None:
    async with serve_ops(tmp_path, target=StateTarget(state=TradingState.HALTED)) as ops:
        start = await run_cli("start", "--url", ops.url)
        throttle = await run_cli("throttle", "1.5", "--url", ops.url)
    assert start.code == 1
    assert start.err.strip() == (
        "error: trading is halted; restart the node to trade again (HTTP 409 conflict)"
    )
    assert throttle.code == 1
    assert "(HTTP 400 out_of_range)" in throttle.err
    assert start.out == "" and throttle.out == ""


async def test_api_key_from_flag_and_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with serve_ops(tmp_path, api_key=API_KEY, snapshot=make_snapshot()) as ops:
        denied = await run_cli("orders", "--url", ops.url)
        flag = await run_cli("orders", "--url", ops.url, "--api-key", API_KEY)
        monkeypatch.setenv("HEDGEGRID_API_KEY", API_KEY)
        monkeypatch.setenv("HEDGEGRID_URL", ops.url)
        env = await run_cli("orders")
    assert denied.code == 1 and "HTTP 401 unauthorized" in denied.err
    assert flag.code == 0 and env.code == 0


async def test_unreachable_server_exits_3() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = await run_cli("status", "--url", url)
    assert result.code == 3
    assert result.err.startswith(f"error: cannot reach {url}: ")


def test_default_url() -> None:
    assert DEFAULT_URL == "http://127.0.0.1:8080"
    assert build_parser().parse_args(["status"]).url is None  # resolved at run time (env)


# --------------------------------------------------------------------------- health


def _health(status: str, age: float | None, reason: str | None = None) -> Health:
    return Health(
        status=status,  # type: ignore[arg-type]
        uptime=10.0,
        last_bar=None if age is None else 1000.0 - age,
        trading_state="running",
        bar_age_seconds=age,
        reason=msgspec.UNSET if reason is None else reason,
    )


@pytest.mark.parametrize(
    ("health", "code", "message"),
    [
        (
            _health("healthy", 5.0),
            0,
            "OK: strategy healthy (running), last bar 5s ago | bar_age=5s;;;0",
        ),
        # the server's verdict is final: an old bar it still calls healthy is OK
        (
            _health("healthy", 200.0),
            0,
            "OK: strategy healthy (running), last bar 200s ago | bar_age=200s;;;0",
        ),
        (
            _health("degraded", 400.0, "no bar for 400s"),
            2,
            "CRITICAL: strategy is degraded (running): no bar for 400s | bar_age=400s;;;0",
        ),
        (
            _health("down", None, "the trading node is not running"),
            2,
            "CRITICAL: strategy is down (running): the trading node is not running",
        ),
    ],
)
def test_evaluate_health_maps_the_verdict(health: Health, code: int, message: str) -> None:
    assert evaluate_health(health) == (code, message)


async def test_health_command_exit_codes(tmp_path: Path) -> None:
    async with serve_ops(tmp_path, snapshot=make_snapshot()) as ops:
        ok = await run_cli("health", "--url", ops.url)
        ops.node_up[0] = False
        down = await run_cli("health", "--url", ops.url, "--json")
        ops.node_up[0] = True
        ops.store.publish(make_snapshot(last_bar_time=time.time() - 500))
        stale = await run_cli("health", "--url", ops.url)
    assert (ok.code, down.code, stale.code) == (0, 2, 2)
    assert ok.out.startswith("OK: strategy healthy (running)")
    assert json.loads(down.out)["reason"] == "the trading node is not running"
    assert stale.out.startswith("CRITICAL: strategy is degraded (running): the last bar was")


async def test_an_answer_that_is_not_health_is_unknown() -> None:
    page = Canned(200, b"<html>", content_type="text/html")
    async with CannedServer({("GET", "/health"): page}) as server:
        garbage = await run_cli("health", "--url", server.url)
    assert garbage.code == 3
    assert garbage.out.startswith("UNKNOWN:")


async def test_health_command_unreachable_is_unknown() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = await run_cli("health", "--url", url)
    assert result.code == 3
    assert result.out.startswith(f"UNKNOWN: cannot reach {url}")


@pytest.mark.tools
async def test_module_entry_point(tmp_path: Path) -> None:
    """``python -m hedgegrid_ops.client_cli`` works on its own (cli.py adds the same commands)."""
    async with serve_ops(tmp_path, snapshot=make_snapshot()) as ops:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "hedgegrid_ops.client_cli",
            "health",
            "--url",
            ops.url,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, err.decode()
    assert out.decode().startswith("OK: strategy healthy")

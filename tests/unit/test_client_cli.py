"""The client sub-commands against a real HTTP server speaking the contract.

The commands block (urllib), so each runs in a worker thread while the fake server
keeps serving on the test's event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from hedgegrid_ops.client_cli import (
    CLIENT_COMMANDS,
    DEFAULT_URL,
    add_client_commands,
    build_parser,
    evaluate_health,
    run_client_command,
)
from tests.unit.test_client_fakes import FakeHedgeGrid, health_body, status_body, unused_port

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


async def test_status_table() -> None:
    async with FakeHedgeGrid(throttle=0.6) as server:
        result = await run_cli("status", "--url", server.url)
    assert result.code == 0, result.err
    expected = status_body(throttle=0.6)
    assert expected["instrument"] in result.out
    lines = result.out.splitlines()
    long_row = next(line for line in lines if line.startswith("LONG"))
    assert "30,000.00" in long_row and "1,500.00" in long_row and "50.25" in long_row
    short_row = next(line for line in lines if line.startswith("SHORT"))
    assert "-20.50" in short_row
    assert f"total {expected['pnl']['total']:,.2f}" in result.out
    assert "Throttle" in result.out and "0.60" in result.out
    assert "97.5%" in result.out  # maker ratio


async def test_status_json_is_the_servers_body() -> None:
    async with FakeHedgeGrid() as server:
        server.can("GET", "/status", 200, {**status_body(), "timestamp": 1.0, "last_bar": 2.0})
        result = await run_cli("status", "--url", server.url, "--json")
    assert result.code == 0
    body = json.loads(result.out)
    assert body["timestamp"] == 1.0 and body["last_bar"] == 2.0
    assert body["pnl"] == status_body()["pnl"]


async def test_ladders_and_orders_tables() -> None:
    async with FakeHedgeGrid() as server:
        ladders = await run_cli("ladders", "--url", server.url)
        orders = await run_cli("orders", "--url", server.url)
    assert ladders.code == 0 and orders.code == 0
    assert "Long ladder:" in ladders.out and "Short ladder:" in ladders.out
    assert "29,800.00" in ladders.out and "O-S-0" in ladders.out
    assert "O-TP-7" in orders.out and "take_profit" in orders.out
    assert "PARTIALLY_FILLED" in orders.out
    assert orders.out.rstrip().endswith("2 open orders")


# --------------------------------------------------------------------------- commands


async def test_flatten_and_throttle() -> None:
    async with FakeHedgeGrid(positions={"LONG", "SHORT"}, throttle=0.75) as server:
        flat = await run_cli("flatten", "--side", "long", "--url", server.url)
        thr = await run_cli("throttle", "0.5", "--url", server.url)
    assert flat.code == 0 and thr.code == 0
    assert "closing LONG" in flat.out and "flattening long" in flat.out
    assert "0.75 -> 0.50" in thr.out
    sent = [json.loads(r.body) for r in server.requests]
    assert sent == [{"side": "long"}, {"throttle": 0.5}]


async def test_stop_then_start() -> None:
    async with FakeHedgeGrid(trading_state="running") as server:
        stop = await run_cli("stop", "--url", server.url)
        start = await run_cli("start", "--url", server.url, "--json")
    assert stop.code == 0 and "stopped: running -> paused" in stop.out
    assert json.loads(start.out)["status"] == "started"


async def test_server_refusal_exits_1_with_detail() -> None:
    async with FakeHedgeGrid(trading_state="halted") as server:
        start = await run_cli("start", "--url", server.url)
        throttle = await run_cli("throttle", "1.5", "--url", server.url)
    assert start.code == 1
    assert start.err.strip() == "error: trading is halted (HTTP 409 conflict)"
    assert throttle.code == 1
    assert "(HTTP 400 out_of_range)" in throttle.err
    assert start.out == "" and throttle.out == ""


async def test_api_key_from_flag_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    async with FakeHedgeGrid(api_key="k1") as server:
        denied = await run_cli("orders", "--url", server.url)
        flag = await run_cli("orders", "--url", server.url, "--api-key", "k1")
        monkeypatch.setenv("HEDGEGRID_API_KEY", "k1")
        monkeypatch.setenv("HEDGEGRID_URL", server.url)
        env = await run_cli("orders")
    assert denied.code == 1 and "HTTP 401 unauthorized" in denied.err
    assert flag.code == 0 and env.code == 0
    assert server.requests[-1].headers["X-API-Key"] == "k1"


async def test_unreachable_server_exits_3() -> None:
    url = f"http://127.0.0.1:{unused_port()}"
    result = await run_cli("status", "--url", url)
    assert result.code == 3
    assert result.err.startswith(f"error: cannot reach {url}: ")


def test_default_url() -> None:
    assert DEFAULT_URL == "http://127.0.0.1:8080"
    assert build_parser().parse_args(["status"]).url is None  # resolved at run time (env)


# --------------------------------------------------------------------------- health


@pytest.mark.parametrize(
    ("body", "max_age", "code", "start"),
    [
        (health_body(bar_age=5.0), 120, 0, "OK: strategy healthy (running), last bar 5s ago"),
        (health_body(bar_age=200.0), 120, 2, "CRITICAL: no bar for 200s (max 120s)"),
        (health_body(bar_age=200.0), 300, 0, "OK: strategy healthy"),
        (health_body(bar_age=None), 120, 2, "CRITICAL: no bar processed yet"),
        (
            health_body("degraded", bar_age=400.0, reason="no bar for 400s"),
            120,
            2,
            "CRITICAL: strategy is degraded (running): no bar for 400s",
        ),
        ({"uptime": 1.0}, 120, 3, "UNKNOWN"),
    ],
)
def test_evaluate_health(body: dict, max_age: float, code: int, start: str) -> None:
    got_code, message = evaluate_health(body, max_age, now=0.0)  # type: ignore[arg-type]
    assert got_code == code
    assert message.startswith(start)


def test_evaluate_health_uses_the_local_clock_without_bar_age() -> None:
    body = health_body(include_bar_age=False, now=1000.0, bar_age=0.0)  # last_bar = 1000
    assert evaluate_health(body, 120, now=1100.0)[0] == 0  # type: ignore[arg-type]
    assert evaluate_health(body, 120, now=1121.0)[0] == 2  # type: ignore[arg-type]


async def test_health_command_exit_codes() -> None:
    async with FakeHedgeGrid() as server:
        ok = await run_cli("health", "--url", server.url)
        server.can("GET", "/health", 200, health_body(bar_age=150.0))
        stale = await run_cli("health", "--url", server.url, "--max-bar-age", "120")
        lenient = await run_cli("health", "--url", server.url, "--max-bar-age", "300")
        server.can("GET", "/health", 503, health_body("down", reason="node not running"))
        down = await run_cli("health", "--url", server.url, "--json")
        server.can("GET", "/health", 200, b"<html>", content_type="text/html")
        garbage = await run_cli("health", "--url", server.url)
    assert (ok.code, stale.code, lenient.code, down.code, garbage.code) == (0, 2, 0, 2, 3)
    assert ok.out.startswith("OK:")
    assert stale.out.startswith("CRITICAL: no bar for 150s")
    assert json.loads(down.out)["reason"] == "node not running"
    assert garbage.out.startswith("UNKNOWN:")


async def test_health_command_unreachable_is_unknown() -> None:
    url = f"http://127.0.0.1:{unused_port()}"
    result = await run_cli("health", "--url", url)
    assert result.code == 3
    assert result.out.startswith(f"UNKNOWN: cannot reach {url}")


async def test_module_entry_point() -> None:
    """``python -m hedgegrid_ops.client_cli`` works on its own (cli.py adds the same commands)."""
    async with FakeHedgeGrid() as server:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "hedgegrid_ops.client_cli",
            "health",
            "--url",
            server.url,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, err.decode()
    assert out.decode().startswith("OK: strategy healthy")

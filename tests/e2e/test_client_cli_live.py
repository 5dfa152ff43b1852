"""The client CLI and the Python client against the real node, with an API key configured.

Each command runs as an operator runs it (``python -m hedgegrid_ops <command>``, a new
process), in both output forms: ``--json`` must be the server's answer, and the table
must show the same facts. Exit codes: 0 done, 1 the server said no (with its sentence),
3 nobody answered. The node gets its key from HEDGEGRID_API_KEY, as the docs advise.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from hedgegrid_ops.api import Ladders
from hedgegrid_ops.client import HedgeGridClient
from tests.support.polling import wait_until
from tests.support.ports import free_port
from tests.support.program import ROOT, RunningService, program_env, run_program, running_program

pytestmark = pytest.mark.e2e

API_KEY = "e2e-" + "k3y-for-the-cli-test"


@dataclass
class Outcome:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        assert self.code == 0, self.err
        return json.loads(self.out)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    tmp = tmp_path_factory.mktemp("cli")
    with running_program(tmp, "--speed", "30", env={"HEDGEGRID_API_KEY": API_KEY}) as svc:
        client = HedgeGridClient(svc.api_url, api_key=API_KEY)
        wait_until(lambda: client.get_status().positions.long.quantity > 0, timeout=30)
        yield svc


@pytest.fixture
def client(node: RunningService) -> HedgeGridClient:
    return HedgeGridClient(node.api_url, api_key=API_KEY)


def cli(node: RunningService | None, *args: str, env: dict[str, str] | None = None) -> Outcome:
    """Run a client command; by default URL and key come from the environment."""
    defaults = {"HEDGEGRID_API_KEY": API_KEY}
    if node is not None:
        defaults["HEDGEGRID_URL"] = node.api_url
    result = run_program(*args, env={**defaults, **(env or {})}, timeout=30)
    return Outcome(result.returncode, result.stdout, result.stderr)


def ensure_running(client: HedgeGridClient) -> None:
    """Leave the node trading for the next test, whatever this one did."""
    wait_until(lambda: client.get_status().trading_state != "flattening", timeout=20)
    client.start()
    client.set_throttle(1.0)
    assert client.get_status().trading_state == "running"


# --------------------------------------------------------------------------- reads


def test_status(node: RunningService, client: HedgeGridClient) -> None:
    data = cli(node, "status", "--json").json()
    assert data["instrument"] == "BTCUSDT-PERP.BINANCE"
    assert set(data) >= {"running", "positions", "pnl", "margin_ratio", "open_orders", "counters"}
    table = cli(node, "status")
    assert table.code == 0, table.err
    assert data["instrument"] in table.out
    assert data["trading_state"] in table.out
    # the position quantities shown are the node's (they move, so compare a fresh read)
    assert f"{client.get_status().throttle:.2f}" in table.out
    for side in ("LONG", "SHORT"):
        assert side in table.out


def test_health_needs_no_key(node: RunningService) -> None:
    data = cli(node, "health", "--json", env={"HEDGEGRID_API_KEY": ""}).json()
    assert data["status"] == "healthy"
    table = cli(node, "health", env={"HEDGEGRID_API_KEY": ""})
    assert table.code == 0, table.out
    assert table.out.startswith("OK:")


def test_ladders(node: RunningService, client: HedgeGridClient) -> None:
    # A side's ladder can be empty for a moment at --speed 30 (a re-centre's new rungs
    # not yet placed, the funding guard or a position cap leaving a side no levels).
    data = wait_until(
        lambda: cli(node, "ladders", "--json").json(),
        lambda d: bool(d["long_ladder"] and d["short_ladder"]),
        timeout=20,
        what="both ladders placed",
    )
    assert set(data) >= {"mid_price", "grid_center", "throttle", "timestamp"}

    def ids(ladders: Ladders) -> set[str]:
        return {r.client_order_id for r in ladders.long_ladder + ladders.short_ladder}

    # The grid moves several times a second at --speed 30, so the table is read between
    # two JSON reads and every order id it shows must be in one of them; a re-centre in
    # between can replace every rung, so a few attempts are allowed.
    for _ in range(5):
        before = ids(client.get_ladders())
        table = cli(node, "ladders")
        after = ids(client.get_ladders())
        assert table.code == 0, table.err
        assert "Long ladder" in table.out and "Short ladder" in table.out
        shown = set(re.findall(r"HG1-\S+", table.out))
        if shown and shown <= before | after:
            return
    pytest.fail(f"the table never matched the server's ladders:\n{table.out}")


def test_orders(node: RunningService) -> None:
    data = cli(node, "orders", "--json").json()
    assert data["count"] == len(data["orders"]) > 0
    for order in data["orders"]:
        assert order["side"] in {"BUY", "SELL"}
        assert order["position_side"] in {"LONG", "SHORT"}
    table = cli(node, "orders")
    assert table.code == 0, table.err
    assert "open order" in table.out
    assert any(o["client_order_id"] in table.out for o in data["orders"]), table.out


# --------------------------------------------------------------------------- commands


def test_throttle(node: RunningService, client: HedgeGridClient) -> None:
    try:
        first = cli(node, "throttle", "0.5", "--json").json()
        assert first["new_throttle"] == 0.5
        assert first["status"] in {"updated", "unchanged"}
        again = cli(node, "throttle", "0.5", "--json").json()
        assert again["status"] == "unchanged"
        assert client.get_status().throttle == 0.5
        table = cli(node, "throttle", "0.25")
        assert table.code == 0, table.err
        assert "0.50" in table.out and "0.25" in table.out, table.out
        assert client.get_status().throttle == 0.25
    finally:
        ensure_running(client)


def test_stop_then_start(node: RunningService, client: HedgeGridClient) -> None:
    try:
        stopped = cli(node, "stop", "--json").json()
        assert stopped["status"] == "stopped"
        assert stopped["previous_state"] == "running"
        assert stopped["trading_state"] == client.get_status().trading_state == "paused"
        again = cli(node, "stop")
        assert again.code == 0, again.err
        assert "already" in again.out and "paused" in again.out, again.out
        started = cli(node, "start")
        assert started.code == 0, started.err
        assert "paused" in started.out and "running" in started.out, started.out
        assert client.get_status().trading_state == "running"
        running = cli(node, "start", "--json").json()
        assert running["status"] == "already_running"
    finally:
        ensure_running(client)


def test_flatten_long(node: RunningService, client: HedgeGridClient) -> None:
    try:
        had_long = client.get_status().positions.long.quantity > 0
        data = cli(node, "flatten", "--side", "long", "--json").json()
        assert data["status"] == "flattening"
        assert data["side"] == "long"
        assert set(data["closing_positions"]) | set(data["already_closing"]) <= {"LONG"}
        if had_long:
            assert data["closing_positions"] + data["already_closing"] == ["LONG"]
        wait_until(lambda: client.get_status().trading_state == "paused", timeout=20, what="paused")
        status = client.get_status()
        assert status.positions.long.quantity == 0, status
        # a second flatten of an empty side: nothing left to close, still a flatten
        table = cli(node, "flatten", "--side", "long")
        assert table.code == 0, table.err
        assert "flattening long" in table.out, table.out
        assert "closing none" in table.out, table.out
        assert client.get_status().counters.flattens >= 2
    finally:
        ensure_running(client)


def test_flags_override_the_environment(node: RunningService) -> None:
    out = cli(
        None,
        "status",
        "--json",
        "--url",
        node.api_url,
        "--api-key",
        API_KEY,
        env={"HEDGEGRID_URL": "http://127.0.0.1:1", "HEDGEGRID_API_KEY": "wrong"},
    )
    assert out.json()["instrument"] == "BTCUSDT-PERP.BINANCE"


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    "command", [("status",), ("ladders",), ("orders",), ("stop",), ("throttle", "0.5")]
)
def test_wrong_key_exits_1_with_a_sentence(node: RunningService, command: tuple[str, ...]) -> None:
    for as_json in ((), ("--json",)):
        out = cli(node, *command, *as_json, env={"HEDGEGRID_API_KEY": "not-the-key"})
        assert out.code == 1, (out.out, out.err)
        assert out.out == ""
        line = out.err.strip()
        assert line.startswith("error: ") and "401" in line and "unauthorized" in line, line
        assert len(line.split()) > 4, line  # a sentence, not just a code
        assert API_KEY not in line and "not-the-key" not in line


def test_missing_key_exits_1(node: RunningService) -> None:
    out = cli(node, "start", env={"HEDGEGRID_API_KEY": ""})
    assert out.code == 1, out.err
    assert "401" in out.err


def test_out_of_range_throttle_is_refused_by_the_server(
    node: RunningService, client: HedgeGridClient
) -> None:
    before = client.get_status().throttle
    out = cli(node, "throttle", "1.5")
    assert out.code == 1, out.err
    assert "400" in out.err and "out_of_range" in out.err, out.err
    assert client.get_status().throttle == before


def test_unreachable_server_exits_3() -> None:
    port = free_port()
    for command in (("status",), ("flatten", "--side", "both", "--json")):
        out = cli(None, *command, env={"HEDGEGRID_URL": f"http://127.0.0.1:{port}"})
        assert out.code == 3, out.err
        assert "cannot reach" in out.err and str(port) in out.err, out.err


# --------------------------------------------------------------------------- the spec


def test_spec_python_client_example(node: RunningService) -> None:
    """The operations guide's usage lines, with our client (attribute access) in place of its
    dict-returning sketch."""
    example = (
        "from hedgegrid_ops.client import HedgeGridClient\n"
        f'client = HedgeGridClient("{node.api_url}", api_key="{API_KEY}")\n'
        "status = client.get_status()\n"
        'print(f"Total PnL: {status.pnl.total} USDT")\n'
    )
    result = subprocess.run(
        [sys.executable, "-c", example],
        cwd=ROOT,
        env=program_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    line = result.stdout.strip()
    assert line.startswith("Total PnL: ") and line.endswith(" USDT"), line
    float(line.removeprefix("Total PnL: ").removesuffix(" USDT"))


# --------------------------------------------------------------------------- watch


def test_watch_draws_frames_from_the_stream(node: RunningService, client: HedgeGridClient) -> None:
    ensure_running(client)
    out = cli(node, "watch", "--count", "12")
    assert out.code == 0, out.err
    assert "\x1b[" not in out.out  # piped: frames are appended, never cleared
    frames = [f for f in out.out.split("\n\n\n") if f.strip()]
    assert len(frames) == 12 or out.out.count("hedgegrid_ops watch  [live]") == 12
    last = out.out.rsplit("hedgegrid_ops watch  [live]", 1)[1]
    status = client.get_status()
    assert "BTCUSDT-PERP.BINANCE" in last
    assert re.search(r"^state   running", last, re.M), last
    assert re.search(r"^LONG\s+[0-9.]+\s+[0-9,.]+", last, re.M), last
    assert re.search(r"^SHORT\s+", last, re.M), last
    assert "PnL     realized" in last and "funding rate" in last
    shown = re.search(r"^balance ([0-9,.]+)", last, re.M)
    assert shown, last
    # the same account, a moment earlier (fills keep moving the balance a little)
    assert abs(float(shown.group(1).replace(",", "")) - status.balance_usdt) < 100


def test_watch_with_a_wrong_key_exits_1(node: RunningService) -> None:
    out = cli(node, "watch", "--count", "1", env={"HEDGEGRID_API_KEY": "not-the-key"})
    assert out.code == 1, (out.out, out.err)
    assert out.err.strip() == "error: wrong X-API-Key (event stream closed with 4401)"
    assert "not-the-key" not in out.err


def test_watch_without_a_server_exits_3() -> None:
    port = free_port()
    out = cli(None, "watch", "--count", "1", env={"HEDGEGRID_URL": f"http://127.0.0.1:{port}"})
    assert out.code == 3, out.err
    assert "cannot reach" in out.err and str(port) in out.err, out.err

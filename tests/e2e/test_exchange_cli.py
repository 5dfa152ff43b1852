"""``python -m hedgegrid_ops exchange`` as a real program: start-up line, restarts with
``--state`` (clean stop and kill -9), replay, and one-line errors with exit code 2."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
from decimal import Decimal as D
from pathlib import Path

import pytest

from tests.exchange_support import ExchangeProcess
from tests.support.program import ROOT, program

pytestmark = pytest.mark.e2e
REPLAY = ROOT / "tests" / "data" / "btcusdt_1m_300.csv"
LONG = {"symbol": "BTCUSDT", "positionSide": "LONG"}


def account_view(rest) -> dict:
    """Everything a reconnecting trading program reconciles against."""
    account = rest.ok("GET", "/fapi/v2/account")
    return {
        "wallet": account["totalWalletBalance"],
        "positions": [
            (r["positionSide"], r["positionAmt"], r["entryPrice"])
            for r in rest.ok("GET", "/fapi/v3/positionRisk")
        ],
        "open": rest.ok("GET", "/fapi/v1/openOrders"),
        "all": rest.ok("GET", "/fapi/v1/allOrders", {"symbol": "BTCUSDT"}),
        "trades": rest.ok("GET", "/fapi/v1/userTrades", {"symbol": "BTCUSDT"}),
        "income": rest.ok("GET", "/fapi/v1/income", {"limit": 1000}),
        "config": rest.ok("GET", "/fapi/v1/symbolConfig"),
    }


def trade_some(rest) -> None:
    rest.ok("POST", "/fapi/v1/leverage", {"symbol": "BTCUSDT", "leverage": 7})
    rest.ok("POST", "/fapi/v1/order", LONG | {"side": "BUY", "type": "MARKET", "quantity": "0.020"})
    bid = D(
        rest.ok("GET", "/fapi/v1/ticker/bookTicker", {"symbol": "BTCUSDT"}, signed=False)[
            "bidPrice"
        ]
    )
    rest.ok(
        "POST",
        "/fapi/v1/order",
        LONG
        | {
            "side": "SELL",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": "0.010",
            "price": f"{bid * D('1.2'):.1f}",
            "newClientOrderId": "tp-1",
        },
    )
    rest.ok(
        "POST",
        "/fapi/v1/order",
        LONG
        | {
            "side": "BUY",
            "type": "LIMIT",
            "timeInForce": "GTX",
            "quantity": "0.010",
            "price": f"{bid * D('0.8'):.1f}",
            "newClientOrderId": "entry-1",
        },
    )


def test_state_survives_a_clean_restart_and_a_kill(tmp_path: Path) -> None:
    state = tmp_path / "exchange-state.json"
    args = ("--speed", "1", "--state", str(state), "--history-minutes", "5")
    first = ExchangeProcess(*args).start()
    try:
        assert first.info["event"] == "exchange_listening" and first.info["state"] == str(state)
        assert "api_secret" not in first.info
        trade_some(first.rest)
        before = account_view(first.rest)
        klines_before = first.rest.ok(
            "GET", "/fapi/v1/klines", {"symbol": "BTCUSDT", "interval": "1m"}, signed=False
        )
    finally:
        assert first.stop() == 0
    saved_mark = D(json.loads(state.read_text())["symbols"]["BTCUSDT"]["mark"])
    assert len(before["open"]) == 2 and before["positions"][0][1] == "0.020"

    second = ExchangeProcess(*args).start()
    try:
        after = account_view(second.rest)
        assert after == before
        logged = [json.loads(line) for line in second.stderr().splitlines()]
        assert any(e["event"].startswith("state_restored") for e in logged), logged
        # The market resumes from the saved mark, with the klines it had as history.
        deadline = time.monotonic() + 15
        while True:
            klines_after = second.rest.ok(
                "GET", "/fapi/v1/klines", {"symbol": "BTCUSDT", "interval": "1m"}, signed=False
            )
            if len(klines_after) > len(klines_before) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert klines_after[: len(klines_before)] == klines_before
        first_new = klines_after[len(klines_before)]
        assert abs(D(first_new[1]) - saved_mark) / saved_mark < D("0.01")
        # Ids continue where they stopped; then the process dies without a clean stop.
        placed = second.rest.ok(
            "POST", "/fapi/v1/order", LONG | {"side": "BUY", "type": "MARKET", "quantity": "0.010"}
        )
        assert placed["orderId"] > max(o["orderId"] for o in before["all"])
        time.sleep(1.0)  # the state writer runs every 0.2 s after a change
        killed = account_view(second.rest)
    finally:
        assert second.proc is not None
        second.proc.send_signal(signal.SIGKILL)
        second.proc.wait()
        second.stop()  # already dead: only collects its log
    with ExchangeProcess(*args) as third:
        assert account_view(third.rest) == killed
    assert [p.name for p in tmp_path.iterdir()] == [state.name]  # no temp file left behind


def test_replay_drives_the_exchange_market() -> None:
    rows = [line.split(",") for line in REPLAY.read_text().splitlines() if line[:1].isdigit()]
    with ExchangeProcess("--replay", str(REPLAY), "--speed", "60", "--ticks-per-minute", "8") as ex:
        assert ex.info["replay"] == str(REPLAY)
        time.sleep(1.5)
        ticker = ex.rest.ok(
            "GET", "/fapi/v1/ticker/bookTicker", {"symbol": "BTCUSDT"}, signed=False
        )
        klines = ex.rest.ok(
            "GET", "/fapi/v1/klines", {"symbol": "BTCUSDT", "interval": "1m"}, signed=False
        )
    assert klines and klines[0][0] == int(rows[0][0])
    assert [D(k[2]) for k in klines[:3]] == [D(r[2]).quantize(D("0.01")) for r in rows[:3]]
    # The quote sits inside the range of the minutes replayed so far (a 1-3 tick spread).
    replayed = rows[: len(klines) + 2]
    low, high = min(float(r[3]) for r in replayed), max(float(r[2]) for r in replayed)
    assert low - 0.3 <= float(ticker["bidPrice"]) <= high


def run_exchange(*args: str) -> subprocess.CompletedProcess[str]:
    """The exchange command expected to refuse to start."""
    return subprocess.run(
        program("exchange", *args), cwd=ROOT, capture_output=True, text=True, timeout=30
    )


def _busy_port() -> tuple[socket.socket, int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock, sock.getsockname()[1]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--replay", "/nonexistent/klines.csv"], "--replay"),
        (["--leverage", "500"], "--leverage"),
        (["--speed", "-1"], "--speed"),
        (["--maker-fee", "2"], "--maker-fee"),
        (["--state", "/nonexistent-dir/state.json"], "--state"),
        (["--minutes-to-funding", "481"], "--minutes-to-funding"),
    ],
)
def test_bad_flags_are_one_line_and_exit_2(args: list[str], fragment: str) -> None:
    proc = run_exchange(*args)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and fragment in proc.stderr


def test_malformed_state_and_busy_port_are_one_line_errors(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"version": 1, "wallet": "x"}))
    proc = run_exchange("--state", str(state))
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "--state" in proc.stderr and str(state) in proc.stderr
    sock, port = _busy_port()
    with sock:
        proc = run_exchange("--port", str(port))
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert str(port) in proc.stderr

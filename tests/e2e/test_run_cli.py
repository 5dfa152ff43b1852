"""The real program, started as a user starts it: exit codes, summary line, signals."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import orjson
import pytest

from hedgegrid_ops.state import StateStore, load_saved
from tests.support.program import ROOT, nautilus_log_lines, program, program_env

pytestmark = pytest.mark.e2e


def _last_json_line(stdout: str) -> dict:
    lines = [ln for ln in stdout.splitlines() if ln.strip()]
    assert lines, "no output"
    return orjson.loads(lines[-1])


def test_run_for_duration_trades_and_prints_summary(tmp_path: Path) -> None:
    log_dir = tmp_path / "logs"
    proc = subprocess.run(
        program("run", "--duration", "6", "--speed", "60", "--log-dir", str(log_dir)),
        cwd=ROOT,
        env=program_env(),
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = _last_json_line(proc.stdout)
    assert summary["event"] == "run_summary"
    assert summary["bars_processed"] > 100  # speed 60 -> ~60 bars per wall second
    assert summary["orders_submitted"] > 0
    assert summary["fills"] > 0
    assert 0 <= summary["maker_fills"] <= summary["fills"]
    for key in ("realized_pnl", "unrealized_pnl", "balance"):
        assert isinstance(summary[key], float)
    # every stdout line before the summary is a structured JSON log line
    for line in proc.stdout.splitlines()[:-1]:
        record = orjson.loads(line)
        assert {"timestamp", "level", "event", "logger"} <= record.keys()
    assert (log_dir / "trading.log").stat().st_size > 0
    records = nautilus_log_lines(log_dir)  # Nautilus's own log, JSON lines
    assert records and all("message" in r and "component" in r for r in records)
    fills = [orjson.loads(ln) for ln in (log_dir / "trading.log").read_text().splitlines()]
    assert any(r["event"] == "order_filled" for r in fills)


def test_sigterm_stops_cleanly_within_5_seconds(tmp_path: Path) -> None:
    """SIGTERM with the ops layer up: exit 0 with nothing lost on the way out.

    The process now ends without the interpreter's teardown (``quick_exit``) and
    without Nautilus's fixed post-stop sleep (``node.stop_node``), so what a slower
    exit used to give for free is checked here: every cancel sent at stop was
    answered before the clients stopped, the summary is out, our logs and
    Nautilus's own log are complete, the state directory is committed and released.
    How fast it exits is a benchmark (``make bench-exit``, figures in
    docs/performance.md); the 5 s bound here only catches a hang.
    """
    log_dir, state_dir = tmp_path / "logs", tmp_path / "state"
    args = ("run", "--enable-ops", "--api-port", "0", "--prometheus-port", "0")
    proc = subprocess.Popen(
        program(*args, "--log-dir", str(log_dir), "--state-dir", str(state_dir)),
        cwd=ROOT,
        env=program_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        for line in proc.stdout:  # wait until it is really trading
            if '"order_filled"' in line or time.monotonic() > deadline:
                break
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=5)
        elapsed = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-2000:]
    assert elapsed < 5
    summary = _last_json_line(out)
    assert summary["event"] == "run_summary" and summary["trading_state"] == "halted"

    events = [orjson.loads(ln) for ln in (log_dir / "trading.log").read_text().splitlines()]
    names = [e["event"] for e in events]
    assert names.index("shutdown") < names.index("strategy_stopped") < names.index("ops_stopped")
    assert names[-1] == "ops_stopped"  # the last line of the run reached the file

    nautilus = nautilus_log_lines(log_dir)
    # Nautilus's log thread was flushed before the exit: its very last line is there.
    assert (nautilus[-1]["component"], nautilus[-1]["message"]) == ("TradingNode", "DISPOSED")
    # Every cancel the strategy sent at stop was answered before the clients stopped:
    # the residual check that runs then finds no order still pending cancel.
    residuals = [r["message"] for r in nautilus if r["message"].startswith("Residual")]
    assert not [m for m in residuals if "PENDING_CANCEL" in m or "SUBMITTED" in m], residuals
    stopped = next(e for e in events if e["event"] == "strategy_stopped")
    cancelled = [r for r in nautilus if r["message"].startswith("<--[EVT] OrderCanceled(")]
    assert len(cancelled) >= stopped["cancelled_orders"]

    # The state directory is committed and its lock released: a restart can open it.
    state = StateStore.open(state_dir)
    try:
        load_saved(state)
    finally:
        state.close()


def test_a_replay_run_ends_at_the_end_of_its_file_with_the_summary(tmp_path: Path) -> None:
    """No --duration: the replay's end stops the program, logged, with exit 0 and a summary."""
    log_dir = tmp_path / "logs"
    klines = ROOT / "tests" / "data" / "btcusdt_1m_300.csv"
    proc = subprocess.run(
        program("run", "--replay", str(klines), "--speed", "300", "--log-dir", str(log_dir)),
        cwd=ROOT,
        env=program_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = _last_json_line(proc.stdout)
    assert summary["event"] == "run_summary"
    assert summary["bars"] == summary["bars_processed"] == 300
    assert summary["period_start"] == "2024-06-01T00:00:00Z"
    assert summary["period_end"] == "2024-06-01T05:00:00Z"
    assert summary["fills"] == summary["maker_fills"] + summary["taker_fills"]
    for key in ("max_drawdown_usdt", "fees", "funding", "return_pct", "net_pnl"):
        assert isinstance(summary[key], float), key
    events = [orjson.loads(ln) for ln in (log_dir / "trading.log").read_text().splitlines()]
    finished = [e for e in events if e["event"] == "replay_finished"]
    assert len(finished) == 1 and finished[0]["minutes"] == 300
    assert any(e["event"] == "shutdown" and e["reason"] == "replay finished" for e in events)

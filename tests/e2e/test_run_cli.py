"""The real program, started as a user starts it: exit codes, summary line, signals."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import orjson
import pytest

from tests.support.program import ROOT, program, program_env

pytestmark = pytest.mark.e2e


def _last_json_line(stdout: str) -> dict:
    lines = [ln for ln in stdout.splitlines() if ln.strip()]
    assert lines, "no output"
    return orjson.loads(lines[-1])


def test_run_for_duration_trades_and_prints_summary(tmp_path: Path) -> None:
    log_dir = tmp_path / "logs"
    proc = subprocess.run(
        program("run", "--duration", "15", "--log-dir", str(log_dir)),
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
    nautilus_log = log_dir / "nautilus.jsonl"  # Nautilus's own log, JSON lines
    records = [orjson.loads(ln) for ln in nautilus_log.read_text().splitlines()]
    assert records and all("message" in r and "component" in r for r in records)
    fills = [orjson.loads(ln) for ln in (log_dir / "trading.log").read_text().splitlines()]
    assert any(r["event"] == "order_filled" for r in fills)


def test_sigterm_stops_cleanly_within_5_seconds(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        program("run", "--log-dir", str(tmp_path / "logs")),
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
    assert _last_json_line(out)["event"] == "run_summary"


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

"""``python -m hedgegrid_ops backtest`` as a user runs it: summary, report.json, report.html.

The figures in report.json are checked against the fills listed in the same file
and against each other (balance change = realized PnL, equity = balance +
unrealized + funding), the HTML against what it must contain offline (four
embedded PNG charts, no external resource), and a replay split over a plain and a
zipped file against the number of klines in them.
"""

from __future__ import annotations

import base64
import math
import re
import subprocess
import zipfile
from pathlib import Path

import orjson
import pytest

from hedgegrid_ops.grid.regime import Regime
from tests.support.program import ROOT, STRATEGY_YAML, program, program_env

pytestmark = pytest.mark.e2e

KLINES = ROOT / "tests" / "data" / "btcusdt_1m_300.csv"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _backtest(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        program("backtest", *args),
        cwd=ROOT,
        env=program_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _check_report(out: Path, stdout: str, bars: int) -> dict:
    report = orjson.loads((out / "report.json").read_bytes())
    fig = report["figures"]
    fills = report["fills"]
    assert fig["bars"] == bars
    assert fig["fills"] == len(fills) > 0
    assert fig["maker_fills"] == sum(f["liquidity"] == "maker" for f in fills)
    assert fig["taker_fills"] == sum(f["liquidity"] == "taker" for f in fills)
    assert math.isclose(fig["fees"], sum(f["commission"] for f in fills), abs_tol=1e-9)
    assert all(f["trade_id"] and f["venue_order_id"] and f["client_order_id"] for f in fills)
    assert math.isclose(
        fig["funding"], sum(f["payment"] for f in report["funding_settlements"]), abs_tol=1e-9
    )
    assert math.isclose(
        fig["final_equity"],
        fig["starting_balance"] + fig["realized_pnl"] + fig["unrealized_pnl"] + fig["funding"],
        abs_tol=1e-6,
    )
    assert sum(fig["regime_minutes"].values()) == bars
    assert fig["orders"] >= fig["fills"] - sum(f["liquidity"] == "taker" for f in fills)
    # The summary on stdout carries the same figures.
    assert f"bars:          {bars}" in stdout
    assert f"fills:         {fig['fills']} ({fig['maker_fills']} maker" in stdout
    assert f"realized PnL:  {fig['realized_pnl']:+,.2f} USDT" in stdout
    assert "funding:" in stdout and "max drawdown:" in stdout and "regimes:" in stdout

    page = (out / "report.html").read_text()
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 4
    assert all(base64.b64decode(img).startswith(PNG_MAGIC) for img in images)
    assert "http://" not in page and "https://" not in page  # viewable offline
    return fig


def test_backtest_on_the_simulated_market_writes_a_consistent_report(tmp_path: Path) -> None:
    out = tmp_path / "report"
    proc = _backtest("--minutes", "600", "--seed", "3", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    fig = _check_report(out, proc.stdout, bars=600)
    assert fig["period_start"] == "2024-01-01T00:00:00Z"
    assert fig["period_end"] == "2024-01-01T10:00:00Z"
    assert fig["funding_settlements"] == 1  # the 08:00 UTC funding time
    assert (out / "logs" / "trading.log").stat().st_size > 0  # logs go to files, not stdout


def test_backtest_replays_plain_and_zipped_kline_files_in_order(tmp_path: Path) -> None:
    rows = KLINES.read_text().splitlines()
    first, second = tmp_path / "part1.csv", tmp_path / "part2.zip"
    first.write_text("\n".join(rows[:120]) + "\n")
    with zipfile.ZipFile(second, "w") as archive:
        archive.writestr("BTCUSDT-1m-part2.csv", "\n".join(rows[120:]) + "\n")
    out = tmp_path / "report"
    proc = _backtest("--replay", str(first), str(second), "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    fig = _check_report(out, proc.stdout, bars=len(rows))
    assert fig["period_start"] == "2024-06-01T00:00:00Z"
    assert fig["regime_minutes"].keys() <= {r.value for r in Regime}
    assert "klines carry no funding" in proc.stdout


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--minutes", "0"), "--minutes must be > 0"),
        (("--minutes", "10", "--replay", str(KLINES)), "exclude each other"),
        (("--replay", "/nonexistent/k.zip"), "--replay"),
        (("--seed", "-1"), "--seed"),
    ],
)
def test_bad_backtest_flags_stop_with_one_line(
    tmp_path: Path, args: tuple[str, ...], expected: str
) -> None:
    proc = _backtest(*args, "--out", str(tmp_path / "r"), timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and expected in proc.stderr
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("command", ["run", "backtest"])
def test_an_instrument_the_venue_does_not_list_stops_start_up(tmp_path: Path, command: str) -> None:
    config = tmp_path / "eth.yaml"
    config.write_text(STRATEGY_YAML.read_text().replace("BTCUSDT-PERP", "ETHUSDT-PERP"))
    proc = subprocess.run(
        program(command, "--strategy-config", str(config), "--log-dir", str(tmp_path / "logs"))
        if command == "run"
        else program(command, "--strategy-config", str(config), "--out", str(tmp_path / "r")),
        cwd=ROOT,
        env=program_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "ETHUSDT-PERP.BINANCE is not provided" in lines[0]
    assert proc.stdout == ""
    assert not (tmp_path / "logs").exists() and not (tmp_path / "r").exists()

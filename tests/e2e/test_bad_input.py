"""Bad configs and flags: one clear line, exit code 2, nothing started."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support.program import ROOT, STRATEGY_YAML, VENUE_YAML, program, program_env

pytestmark = pytest.mark.e2e


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        program("run", "--duration", "5", "--log-dir", str(tmp_path / "logs"), *args),
        cwd=ROOT,
        env=program_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def _write_variant(tmp_path: Path, source: Path, old: str, new: str) -> Path:
    text = source.read_text()
    assert old in text, f"fixture drift: {old!r} not in {source}"
    path = tmp_path / source.name
    path.write_text(text.replace(old, new, 1))
    return path


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "  grid_levels_long: 6",
            "  grid_levels_long: 6\n  grid_levelz: 3",
            "grid: Object contains unknown field `grid_levelz`",
        ),
        (
            "  grid_levels_long: 6",
            "  grid_levels_long: six",
            "grid.grid_levels_long: Expected `int`, got `str`",
        ),
        (
            "  grid_step_bps: 15.0",
            "  grid_step_bps: -1.0",
            "grid.grid_step_bps: Expected `float` > 0",
        ),
        ("  tp_steps: 1", "  tp_steps: 0", "exits.tp_steps: Expected `int` >= 1"),
        (
            "  adx_trend_off: 18.0",
            "  adx_trend_off: 30.0",
            "regime: adx_trend_off must not exceed adx_trend_on",
        ),
        ("grid:\n", "grid: [\n", "invalid YAML"),
    ],
)
def test_bad_strategy_config(tmp_path: Path, old: str, new: str, expected: str) -> None:
    bad = _write_variant(tmp_path, STRATEGY_YAML, old, new)
    proc = _run(tmp_path, "--strategy-config", str(bad))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert str(bad) in lines[0] and expected in lines[0]
    assert proc.stdout == ""
    assert not (tmp_path / "logs").exists()  # nothing started, not even logging


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("  leverage: 10", "  leverage: 0", "account.leverage: Expected `int` >= 1"),
        ("kind: sim", "kind: binance", "kind: Expected `str` matching"),
        (
            "  seed: 7",
            "  seed: 7\n  colour: blue",
            "market: Object contains unknown field `colour`",
        ),
    ],
)
def test_bad_venue_config(tmp_path: Path, old: str, new: str, expected: str) -> None:
    bad = _write_variant(tmp_path, VENUE_YAML, old, new)
    proc = _run(tmp_path, "--venue-config", str(bad))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert str(bad) in lines[0]
    assert expected.split(":")[0] in lines[0]
    assert not (tmp_path / "logs").exists()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--strategy-config", "/nonexistent/x.yaml"), "/nonexistent/x.yaml: file not found"),
        (("--speed", "fast"), "--speed"),
        (("--speed", "0"), "--speed"),
        (("--speed", "100000"), "--speed"),
        (("--duration", "-3"), "--duration"),
        (("--mode", "live"), "--mode live needs a live venue config (kind: binance)"),
        (("--mode", "demo"), "--mode"),
        (("--replay", "/nonexistent/klines.csv"), "--replay"),
        (("--enable-ops", "--api-port", "70000"), "--api-port"),
        (("--no-such-flag",), "unrecognized arguments"),
    ],
)
def test_bad_flags(tmp_path: Path, args: tuple[str, ...], expected: str) -> None:
    proc = _run(tmp_path, *args)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert expected in lines[0]
    assert not (tmp_path / "logs").exists()


def test_help_explains_every_flag() -> None:
    proc = subprocess.run(
        program("run", "--help"),
        cwd=ROOT,
        env=program_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0
    for flag in (
        "--strategy-config",
        "--venue-config",
        "--mode",
        "--duration",
        "--speed",
        "--seed",
        "--replay",
        "--enable-ops",
        "--api-port",
        "--prometheus-port",
        "--host",
        "--api-key",
        "--max-bar-age",
    ):
        assert flag in proc.stdout

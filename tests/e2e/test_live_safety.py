"""Live-mode safety rules at the command line: refused before anything connects.

Each case is the real program as an operator runs it; every refusal is one line
on stderr, exit code 2, no log directory created, and never a key value.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.support.program import ROOT, program

pytestmark = pytest.mark.e2e

VENUES = ROOT / "configs" / "venues"
KEY, SECRET = "k3y-DO-NOT-LEAK-5a1f", "s3cret-DO-NOT-LEAK-77c2"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HEDGEGRID_", "BINANCE_"))}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def _run(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        program("run", "--mode", "live", "--log-dir", str(tmp_path / "logs"), *args),
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _refused(proc: subprocess.CompletedProcess[str], tmp_path: Path, expected: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert expected in lines[0]
    assert KEY not in proc.stderr + proc.stdout and SECRET not in proc.stderr + proc.stdout
    assert not (tmp_path / "logs").exists()


def test_mainnet_needs_confirm_live(tmp_path: Path) -> None:
    env = _env(BINANCE_API_KEY=KEY, BINANCE_API_SECRET=SECRET, HEDGEGRID_API_KEY="ops")
    proc = _run(tmp_path, env, "--venue-config", str(VENUES / "binance_futures.yaml"))
    _refused(proc, tmp_path, "MAINNET with real money: add --confirm-live")


@pytest.mark.parametrize(
    ("config", "present", "missing"),
    [
        ("binance_testnet.yaml", {}, "BINANCE_FUTURES_TESTNET_API_KEY"),
        (
            "binance_testnet.yaml",
            {"BINANCE_FUTURES_TESTNET_API_KEY": KEY},
            "BINANCE_FUTURES_TESTNET_API_SECRET",
        ),
        ("binance_demo.yaml", {"BINANCE_API_KEY": KEY}, "BINANCE_DEMO_API_KEY"),
        ("binance_local.yaml", {"BINANCE_API_SECRET": SECRET}, "BINANCE_LOCAL_API_KEY"),
    ],
)
def test_missing_key_names_the_variable(
    tmp_path: Path, config: str, present: dict[str, str], missing: str
) -> None:
    proc = _run(tmp_path, _env(**present), "--venue-config", str(VENUES / config))
    _refused(proc, tmp_path, f"{missing} is not set")


def test_mainnet_key_check_follows_confirmation(tmp_path: Path) -> None:
    proc = _run(
        tmp_path, _env(), "--venue-config", str(VENUES / "binance_futures.yaml"), "--confirm-live"
    )
    _refused(proc, tmp_path, "BINANCE_API_KEY is not set")


def test_live_ops_need_a_control_api_key(tmp_path: Path) -> None:
    env = _env(BINANCE_LOCAL_API_KEY=KEY, BINANCE_LOCAL_API_SECRET=SECRET)
    proc = _run(tmp_path, env, "--venue-config", str(VENUES / "binance_local.yaml"), "--enable-ops")
    _refused(proc, tmp_path, "needs a control-API key: set HEDGEGRID_API_KEY")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--venue-config", str(VENUES / "sim.yaml")), "--mode live needs a live venue config"),
        (("--venue-config", str(VENUES / "binance_local.yaml"), "--speed", "5"), "--speed"),
        (("--venue-config", str(VENUES / "binance_local.yaml"), "--seed", "5"), "--seed"),
    ],
)
def test_paper_only_flags_and_configs_are_refused(
    tmp_path: Path, args: tuple[str, ...], expected: str
) -> None:
    env = _env(BINANCE_LOCAL_API_KEY=KEY, BINANCE_LOCAL_API_SECRET=SECRET)
    _refused(_run(tmp_path, env, *args), tmp_path, expected)


def test_paper_mode_refuses_a_live_config(tmp_path: Path) -> None:
    proc = subprocess.run(
        program(
            "run",
            "--log-dir",
            str(tmp_path / "logs"),
            "--venue-config",
            str(VENUES / "binance_testnet.yaml"),
        ),
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    _refused(proc, tmp_path, "is a live venue config (kind: binance): add --mode live")

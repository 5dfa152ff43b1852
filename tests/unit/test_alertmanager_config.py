"""configs/alertmanager/alertmanager.yml: valid for Alertmanager, and routes every shipped
alert by its severity to the receiver for that severity (asked of amtool itself).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.tools import require_tool

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "alertmanager" / "alertmanager.yml"
RULES = ROOT / "configs" / "prometheus" / "alerts.yml"


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_tool("amtool"), *args], capture_output=True, text=True, timeout=60, check=False
    )


def shipped_alerts() -> list[tuple[str, str]]:
    rules = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return sorted(
        (r["alert"], r["labels"]["severity"])
        for g in rules["groups"]
        for r in g["rules"]
        if "alert" in r
    )


def test_amtool_accepts_the_config() -> None:
    result = amtool("check-config", str(CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize(("alert", "severity"), shipped_alerts())
def test_each_shipped_alert_reaches_the_receiver_of_its_severity(alert: str, severity: str):
    result = amtool(
        "config",
        "routes",
        "test",
        f"--config.file={CONFIG}",
        f"alertname={alert}",
        f"severity={severity}",
        "instrument=BTCUSDT-PERP.BINANCE",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"hedgegrid-{severity}"


def test_every_receiver_delivers_somewhere() -> None:
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    for receiver in config["receivers"]:
        hooks = receiver.get("webhook_configs", [])
        assert hooks and all(h["url"].startswith("http") for h in hooks), receiver["name"]

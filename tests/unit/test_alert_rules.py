"""Prometheus config and alert rules: valid for promtool, and behaving as their tests say.

Alert rules are code that only runs when something is already wrong, so they are
checked here the way Prometheus will read them (promtool), and their unit tests
(configs/prometheus/alerts_test.yml) must cover every alert both firing and silent.
promtool is a system tool: without it these tests skip, unless HEDGEGRID_REQUIRE_TOOLS=1
(CI), where a missing tool is a failure rather than a quiet skip.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.tools import require_tool

pytestmark = pytest.mark.tools

ROOT = Path(__file__).resolve().parents[2]
PROM_DIR = ROOT / "configs" / "prometheus"
CONFIG = PROM_DIR / "prometheus.yml"
RULES = PROM_DIR / "alerts.yml"
RULE_TESTS = PROM_DIR / "alerts_test.yml"

# The operations guide's four alerts: expression, hold time and severity.
SPEC_ALERTS = {
    "StrategyDown": ("(time() - hedgegrid_last_bar_timestamp) > 300", "1m", "critical"),
    "HighMarginUsage": ("hedgegrid_margin_ratio > 0.8", "5m", "warning"),
    "LowMakerRatio": ("hedgegrid_maker_ratio < 0.9", "15m", "warning"),
    "LargeUnrealizedLoss": ("hedgegrid_unrealized_pnl_usdt < -500", "10m", "warning"),
}
# Where a shipped rule reads the guide's expression through a wider lens, and why:
# StrategyDown also fires when the process is gone (its series turn stale at once).
SPEC_EXTENSIONS = {
    "StrategyDown": (
        "hedgegrid_last_bar_timestamp",
        "max_over_time(hedgegrid_last_bar_timestamp[1h])",
    ),
}
EXTRA_ALERTS = {
    "TradingHalted",
    "TradingPausedTooLong",
    "FlattenExecuted",
    "KillSwitchTripped",
    "ApiServerErrors",
    "EventLoopLag",
    "HedgegridTargetDown",
    "NotificationsFailing",
}


def promtool() -> str:
    return require_tool("promtool")


def run_promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def rules_by_name() -> dict[str, dict[str, Any]]:
    return {r["alert"]: r for g in load(RULES)["groups"] for r in g["rules"] if "alert" in r}


def squash(expr: str) -> str:
    return re.sub(r"\s+", "", expr)


# --------------------------------------------------------------------------- structure


def test_scrape_job_matches_the_operations_guide() -> None:
    config = load(CONFIG)
    assert config["global"]["evaluation_interval"]
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    job = jobs["hedgegrid"]
    assert job["scrape_interval"] == "10s"
    (static,) = job["static_configs"]
    assert static["targets"] == ["localhost:9090"]
    assert static["labels"] == {"strategy": "hedge_grid_v1", "environment": "production"}


def test_rule_files_are_relative_and_exist() -> None:
    rule_files = load(CONFIG)["rule_files"]
    assert rule_files == ["alerts.yml"]
    for name in rule_files:
        assert not Path(name).is_absolute()
        assert (PROM_DIR / name).is_file()
    assert load(RULE_TESTS)["rule_files"] == ["alerts.yml"]


def test_all_alerts_are_defined() -> None:
    assert set(rules_by_name()) == set(SPEC_ALERTS) | EXTRA_ALERTS


@pytest.mark.parametrize("name", sorted(SPEC_ALERTS))
def test_spec_alerts_keep_the_guides_meaning(name: str) -> None:
    expr, hold, severity = SPEC_ALERTS[name]
    if name in SPEC_EXTENSIONS:
        expr = expr.replace(*SPEC_EXTENSIONS[name])
    rule = rules_by_name()[name]
    assert squash(rule["expr"]) == squash(expr)
    assert rule["for"] == hold
    assert rule["labels"]["severity"] == severity


def test_every_alert_has_severity_and_explanations() -> None:
    for name, rule in rules_by_name().items():
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, name
        assert rule["annotations"]["summary"].strip(), name
        assert rule["annotations"]["description"].strip(), name


def test_every_alert_has_a_firing_and_a_silent_test_case() -> None:
    firing: set[str] = set()
    silent: set[str] = set()
    for case in load(RULE_TESTS)["tests"]:
        for check in case.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else silent).add(check["alertname"])
    names = set(rules_by_name())
    assert names - firing == set(), "alerts never shown firing"
    assert names - silent == set(), "alerts never shown silent"


# --------------------------------------------------------------------------- promtool


def test_promtool_check_config() -> None:
    result = run_promtool("check", "config", CONFIG.name, cwd=PROM_DIR)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_check_rules() -> None:
    result = run_promtool("check", "rules", RULES.name, cwd=PROM_DIR)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(rules_by_name())} rules found" in result.stdout


def test_promtool_rule_unit_tests_pass() -> None:
    result = run_promtool("test", "rules", RULE_TESTS.name, cwd=PROM_DIR)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (
            "(time() - max_over_time(hedgegrid_last_bar_timestamp[1h])) > 300",
            "(time() - max_over_time(hedgegrid_last_bar_timestamp[1h])) > 900",
        ),
        (  # the guide's plain expression misses a service that died
            "(time() - max_over_time(hedgegrid_last_bar_timestamp[1h])) > 300",
            "(time() - hedgegrid_last_bar_timestamp) > 300",
        ),
        (
            'hedgegrid_trading_state{state="halted"} == 1',
            'hedgegrid_trading_state{state="paused"} == 1',
        ),
        ('status=~"5.."', 'status=~"[45].."'),
        ('up{job="hedgegrid"} == 0', "up == 0"),
        ("increase(hedgegrid_kill_switch_trips_total[10m])", "hedgegrid_kill_switch_trips_total"),
        (  # a failure count carried since long ago is not a failure now
            "increase(hedgegrid_notifications_failed_total[15m])",
            "hedgegrid_notifications_failed_total",
        ),
    ],
)
def test_rule_unit_tests_catch_a_broken_rule(tmp_path: Path, old: str, new: str) -> None:
    """The rule tests are worth having only if a wrong rule makes them fail."""
    text = RULES.read_text(encoding="utf-8")
    assert old in text
    (tmp_path / RULES.name).write_text(text.replace(old, new), encoding="utf-8")
    shutil.copy(RULE_TESTS, tmp_path / RULE_TESTS.name)
    result = run_promtool("test", "rules", RULE_TESTS.name, cwd=tmp_path)
    assert result.returncode != 0, "alerts_test.yml did not notice the change"

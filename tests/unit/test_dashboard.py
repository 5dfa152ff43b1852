"""The Grafana dashboard only shows what the node exports, for the selected instrument.

A dashboard whose queries name a metric the node does not export imports fine and
then shows "No data" forever, so the metric names in every query are checked against
the metrics contract (docs/shared spec + the team's API/metrics contract) here.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.spec_contract import SPEC_METRICS
from tests.tools import require_tool

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "configs" / "grafana" / "hedgegrid_dashboard.json"

# The operations guide's 15 gauges: the dashboard must show every one of them.
SPEC_GAUGES = frozenset(SPEC_METRICS)
EXTRA_METRICS = frozenset(
    {
        "hedgegrid_balance_usdt",
        "hedgegrid_equity_usdt",
        "hedgegrid_margin_used_usdt",
        "hedgegrid_position_quantity",
        "hedgegrid_throttle",
        "hedgegrid_trading_state",
        "hedgegrid_regime",
        "hedgegrid_mid_price",
        "hedgegrid_funding_scale",
        "hedgegrid_bars_processed_total",
        "hedgegrid_orders_submitted_total",
        "hedgegrid_orders_cancelled_total",
        "hedgegrid_orders_rejected_total",
        "hedgegrid_orders_denied_total",
        "hedgegrid_fills_total",
        "hedgegrid_funding_payments_total",
        "hedgegrid_funding_paid_usdt",
        "hedgegrid_flattens_total",
        "hedgegrid_recenters_total",
        "hedgegrid_api_requests_total",
        "hedgegrid_api_request_duration_seconds",
        "hedgegrid_event_loop_lag_seconds",
        "hedgegrid_build_info",
        "hedgegrid_position_fills_held",
    }
)
# Series Prometheus makes itself, and the node's process series (named like
# Prometheus's own process collectors); they carry no instrument label.
PROMETHEUS_SERIES = frozenset({"up", "process_resident_memory_bytes", "process_open_fds"})
CONTRACT = SPEC_GAUGES | EXTRA_METRICS
HISTOGRAMS = frozenset({"hedgegrid_api_request_duration_seconds"})

PROMQL_KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless"}
    | {"offset", "bool", "inf", "nan"}
)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_SELECTOR = re.compile(r"(?<![A-Za-z0-9_:])(hedgegrid_[A-Za-z0-9_:]*)\s*(\{[^}]*\})?")


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (functions, labels and keywords removed)."""
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub("", text)
    text = _RANGE.sub("", text)
    text = _GROUPING.sub("", text)
    names: set[str] = set()
    for match in _IDENT.finditer(text):
        word = match.group(0)
        before = text[match.start() - 1] if match.start() else " "
        if before.isdigit() or before == ".":
            continue  # the unit of a duration or the exponent of a number
        if text[match.end() :].lstrip().startswith("("):
            continue  # a function call
        if word.lower() in PROMQL_KEYWORDS:
            continue
        names.add(word)
    return names


def base_metric(name: str) -> str:
    """Histogram series (_bucket/_count/_sum) map to the histogram's own name."""
    for suffix in ("_bucket", "_count", "_sum"):
        if name.endswith(suffix) and name.removesuffix(suffix) in HISTOGRAMS:
            return name.removesuffix(suffix)
    return name


def load_dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def iter_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """All panels, including those nested in collapsed rows."""
    for panel in panels:
        yield panel
        yield from iter_panels(panel.get("panels", []))


def data_panels() -> list[dict[str, Any]]:
    return [p for p in iter_panels(load_dashboard()["panels"]) if p["type"] != "row"]


def all_exprs() -> list[str]:
    return [t["expr"] for p in data_panels() for t in p.get("targets", []) if t.get("expr")]


# --------------------------------------------------------------------------- the parser


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ('hedgegrid_margin_ratio{instrument="$instrument"}', {"hedgegrid_margin_ratio"}),
        ("time() - hedgegrid_last_bar_timestamp", {"hedgegrid_last_bar_timestamp"}),
        (
            "histogram_quantile(0.95, sum by (le, route) "
            '(rate(hedgegrid_api_request_duration_seconds_bucket{route="/x"}[5m])))',
            {"hedgegrid_api_request_duration_seconds_bucket"},
        ),
        ("sum(a_total) / on (job) group_left b_total offset 5m > 1e3", {"a_total", "b_total"}),
        ('count(x{status=~"5.."} or vector(0))', {"x"}),
        ("max_over_time(lag[$__rate_interval]) and bool_metric", {"lag", "bool_metric"}),
    ],
)
def test_metric_names_parser(expr: str, expected: set[str]) -> None:
    assert metric_names(expr) == expected


def test_base_metric_strips_histogram_suffixes_only_for_histograms() -> None:
    assert base_metric("hedgegrid_api_request_duration_seconds_bucket") in HISTOGRAMS
    assert base_metric("hedgegrid_api_request_duration_seconds_count") in HISTOGRAMS
    assert base_metric("hedgegrid_funding_payments_count") == "hedgegrid_funding_payments_count"


# --------------------------------------------------------------------------- the dashboard


def test_dashboard_is_importable_json() -> None:
    dashboard = load_dashboard()
    assert dashboard["title"]
    assert dashboard["uid"]
    assert dashboard.get("id") is None  # an import must not collide with an existing id
    assert 36 <= dashboard["schemaVersion"] <= 41
    ids = [p["id"] for p in iter_panels(dashboard["panels"])]
    assert len(ids) == len(set(ids)), "panel ids must be unique"


def test_panels_fit_the_grid_without_overlapping() -> None:
    occupied: dict[tuple[int, int], str] = {}
    for panel in iter_panels(load_dashboard()["panels"]):
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["w"] > 0 and pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                other = occupied.setdefault((x, y), panel["title"])
                assert other == panel["title"], f"{panel['title']!r} overlaps {other!r}"


def test_templating_variables() -> None:
    variables = {v["name"]: v for v in load_dashboard()["templating"]["list"]}
    datasource = variables["datasource"]
    assert datasource["type"] == "datasource"
    assert datasource["query"] == "prometheus"
    instrument = variables["instrument"]
    assert instrument["type"] == "query"
    assert instrument["datasource"]["uid"] == "${datasource}"
    query = instrument["query"]
    query_text = query["query"] if isinstance(query, dict) else query
    assert re.fullmatch(
        r"label_values\(\s*hedgegrid_uptime_seconds\s*,\s*instrument\s*\)", query_text
    )


def test_every_panel_queries_prometheus_through_the_datasource_variable() -> None:
    panels = data_panels()
    assert panels
    for panel in panels:
        assert panel["type"] in {"timeseries", "stat"}, panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        targets = [t for t in panel.get("targets", []) if t.get("expr", "").strip()]
        assert targets, f"panel {panel['title']!r} has no query"
        for target in targets:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]


def test_every_panel_sets_a_unit_and_thresholds() -> None:
    for panel in data_panels():
        defaults = panel["fieldConfig"]["defaults"]
        assert defaults.get("unit"), f"panel {panel['title']!r} has no unit"
        steps = defaults["thresholds"]["steps"]
        assert steps[0]["value"] is None, panel["title"]  # the base step
        values = [s["value"] for s in steps[1:]]
        assert values == sorted(values), panel["title"]


def test_every_metric_in_a_query_is_in_the_contract() -> None:
    unknown = {
        name: expr
        for expr in all_exprs()
        for name in map(base_metric, metric_names(expr))
        if name not in CONTRACT | PROMETHEUS_SERIES
    }
    assert not unknown, f"metrics the node does not export: {unknown}"


def test_dashboard_shows_every_spec_gauge_and_the_key_extras() -> None:
    shown = {base_metric(n) for expr in all_exprs() for n in metric_names(expr)}
    required = SPEC_GAUGES | {
        "hedgegrid_trading_state",
        "hedgegrid_throttle",
        "hedgegrid_fills_total",
        "hedgegrid_funding_scale",
        "hedgegrid_api_requests_total",
        "hedgegrid_api_request_duration_seconds",
        "hedgegrid_event_loop_lag_seconds",
    }
    assert required <= shown, f"not on the dashboard: {sorted(required - shown)}"


def test_every_hedgegrid_selector_is_filtered_by_the_instrument_variable() -> None:
    for expr in all_exprs():
        selectors = _SELECTOR.findall(expr)
        for name, matchers in selectors:
            assert 'instrument="$instrument"' in matchers, f"{name} unfiltered in {expr}"


def test_latency_panel_uses_histogram_quantile_on_buckets() -> None:
    assert any(
        "histogram_quantile(" in e and "hedgegrid_api_request_duration_seconds_bucket" in e
        for e in all_exprs()
    )


# --------------------------------------------------------------------------- PromQL syntax


def promtool() -> str:
    return require_tool("promtool")


def concrete(expr: str) -> str:
    """Substitute Grafana's variables the way Grafana would before sending the query."""
    return (
        expr.replace("$__rate_interval", "1m")
        .replace("$__interval", "15s")
        .replace("$instrument", "BTCUSDT-PERP.BINANCE")
    )


@pytest.mark.tools
def test_every_query_is_valid_promql(tmp_path: Path) -> None:
    tool = promtool()
    exprs = all_exprs()
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query_{i}", "expr": concrete(e)}
                    for i, e in enumerate(exprs)
                ],
            }
        ]
    }
    path = tmp_path / "dashboard_queries.yml"
    path.write_text(yaml.safe_dump(rules), encoding="utf-8")
    result = subprocess.run(
        [tool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(exprs)} rules found" in result.stdout

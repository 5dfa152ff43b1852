"""/metrics: the spec's gauges, counters and API series, rendered from published snapshots."""

from __future__ import annotations

import asyncio
import math
import platform
import re
import socket
import time
from pathlib import Path

import aiohttp
import pytest

import hedgegrid_ops
from hedgegrid_ops.ops.metrics import OpsMetrics
from hedgegrid_ops.snapshot import Counters, StrategySnapshot, TradingState
from tests.spec_contract import INSTRUMENT, SPEC_METRICS
from tests.support.inprocess import API_KEY, make_snapshot, serve_ops

SPEC_NAMES = list(SPEC_METRICS)
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="([^"]*)"')

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse_exposition(text: str) -> tuple[Samples, dict[str, str]]:
    """(samples by (name, labels), TYPE by metric name) from Prometheus text format."""
    samples: Samples = {}
    types: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            types[name] = kind
            continue
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        name, labels, value = match.groups()
        key = (name, frozenset(_LABEL.findall(labels or "")))
        assert key not in samples, f"duplicate series {key}"
        samples[key] = float(value)
    return samples, types


def one(samples: Samples, name: str, **labels: str) -> float:
    key = (name, frozenset({"instrument": INSTRUMENT, **labels}.items()))
    assert key in samples, f"missing {name}{labels}"
    return samples[key]


def expected_spec_values(snap: StrategySnapshot) -> dict[str, float]:
    """Written out from the guide's definitions, independently of the metrics module."""
    c = snap.counters
    makers = c.fills_buy_maker + c.fills_sell_maker
    fills = makers + c.fills_buy_taker + c.fills_sell_taker
    return {
        "hedgegrid_long_inventory_usdt": snap.long.inventory_usdt,
        "hedgegrid_short_inventory_usdt": snap.short.inventory_usdt,
        "hedgegrid_net_inventory_usdt": snap.long.inventory_usdt - snap.short.inventory_usdt,
        "hedgegrid_active_rungs_long": len(snap.long_ladder),
        "hedgegrid_active_rungs_short": len(snap.short_ladder),
        "hedgegrid_open_orders": len(snap.orders),
        "hedgegrid_margin_ratio": snap.margin_ratio,
        "hedgegrid_maker_ratio": makers / fills if fills else 1.0,
        "hedgegrid_funding_rate_current": snap.funding_rate,
        "hedgegrid_funding_cost_1h_projected_usdt": snap.funding_cost_1h_projected,
        "hedgegrid_realized_pnl_usdt": snap.realized_pnl,
        "hedgegrid_unrealized_pnl_usdt": snap.unrealized_pnl,
        "hedgegrid_total_pnl_usdt": snap.realized_pnl + snap.unrealized_pnl,
        "hedgegrid_uptime_seconds": snap.timestamp - snap.started_at,
        "hedgegrid_last_bar_timestamp": snap.last_bar_time or 0.0,
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _scrape(url: str) -> tuple[Samples, dict[str, str], str]:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = await resp.text()
    samples, types = parse_exposition(text)
    return samples, types, text


def test_every_spec_gauge_equals_the_snapshot() -> None:
    metrics = OpsMetrics(INSTRUMENT)
    snap = make_snapshot()
    metrics.update(snap)
    body, content_type = metrics.render()
    samples, types = parse_exposition(body.decode())
    assert content_type.startswith("text/plain")
    for name, value in expected_spec_values(snap).items():
        assert types[name] == "gauge"
        assert one(samples, name) == pytest.approx(value, rel=1e-12), name
    assert set(SPEC_NAMES) == set(expected_spec_values(snap))


def test_counters_follow_the_snapshot_totals() -> None:
    metrics = OpsMetrics(INSTRUMENT)
    snap = make_snapshot()
    metrics.update(snap)
    samples, types = parse_exposition(metrics.render()[0].decode())
    c = snap.counters
    assert one(samples, "hedgegrid_bars_processed_total") == c.bars_processed
    assert one(samples, "hedgegrid_orders_submitted_total", side="buy") == c.orders_submitted_buy
    assert one(samples, "hedgegrid_orders_submitted_total", side="sell") == c.orders_submitted_sell
    assert one(samples, "hedgegrid_orders_cancelled_total") == c.orders_cancelled
    assert one(samples, "hedgegrid_orders_rejected_total") == c.orders_rejected
    assert one(samples, "hedgegrid_orders_denied_total") == c.orders_denied
    for side in ("buy", "sell"):
        for liquidity in ("maker", "taker"):
            expected = getattr(c, f"fills_{side}_{liquidity}")
            assert one(samples, "hedgegrid_fills_total", side=side, liquidity=liquidity) == expected
    assert one(samples, "hedgegrid_funding_payments_total") == c.funding_payments
    assert one(samples, "hedgegrid_funding_paid_usdt") == c.funding_paid_usdt
    assert one(samples, "hedgegrid_flattens_total") == c.flattens
    assert one(samples, "hedgegrid_recenters_total") == c.recenters
    for name in ("hedgegrid_fills_total", "hedgegrid_bars_processed_total"):
        assert types[name] == "counter"

    later = make_snapshot(counters=Counters(bars_processed=c.bars_processed + 5))
    metrics.update(later)
    samples, _ = parse_exposition(metrics.render()[0].decode())
    assert one(samples, "hedgegrid_bars_processed_total") == c.bars_processed + 5


def test_state_regime_and_extras() -> None:
    metrics = OpsMetrics(INSTRUMENT)
    snap = make_snapshot(trading_state=TradingState.FLATTENING, regime="up", mid_price=None)
    metrics.update(snap)
    samples, _ = parse_exposition(metrics.render()[0].decode())
    states = {s.value: one(samples, "hedgegrid_trading_state", state=s.value) for s in TradingState}
    assert states == {s.value: float(s == TradingState.FLATTENING) for s in TradingState}
    regimes = {r: one(samples, "hedgegrid_regime", regime=r) for r in ("sideways", "up", "down")}
    assert regimes == {"sideways": 0.0, "up": 1.0, "down": 0.0}
    assert math.isnan(one(samples, "hedgegrid_mid_price"))
    assert one(samples, "hedgegrid_balance_usdt") == snap.balance_usdt
    assert one(samples, "hedgegrid_equity_usdt") == snap.equity_usdt
    assert one(samples, "hedgegrid_margin_used_usdt") == snap.margin_used_usdt
    assert one(samples, "hedgegrid_throttle") == snap.throttle
    assert one(samples, "hedgegrid_position_quantity", side="long") == snap.long.quantity
    assert one(samples, "hedgegrid_position_quantity", side="short") == snap.short.quantity
    assert one(samples, "hedgegrid_funding_scale", side="long") == snap.funding_scale_long
    assert one(samples, "hedgegrid_funding_scale", side="short") == snap.funding_scale_short
    info = one(
        samples,
        "hedgegrid_build_info",
        version=hedgegrid_ops.__version__,
        nautilus_version="1.231.0",
        python_version=platform.python_version(),
    )
    assert info == 1.0


def test_fills_held_by_open_legs_are_mirrored() -> None:
    metrics = OpsMetrics(INSTRUMENT)
    metrics.update(make_snapshot(fills_held=1234))
    samples, types = parse_exposition(metrics.render()[0].decode())
    assert one(samples, "hedgegrid_position_fills_held") == 1234
    assert types["hedgegrid_position_fills_held"] == "gauge"


def test_process_memory_and_descriptors_are_read_at_each_scrape(tmp_path: Path) -> None:
    """Unlabelled, as Prometheus's own process collectors name them."""
    metrics = OpsMetrics(INSTRUMENT)
    samples, _ = parse_exposition(metrics.render()[0].decode())
    rss_kb = next(
        int(line.split()[1])
        for line in Path("/proc/self/status").read_text().splitlines()
        if line.startswith("VmRSS:")
    )
    resident = samples[("process_resident_memory_bytes", frozenset())]
    assert resident == pytest.approx(rss_kb * 1024, rel=0.1)
    fds_before = samples[("process_open_fds", frozenset())]
    extra = [(tmp_path / f"f{i}").open("w") for i in range(5)]
    try:
        samples, _ = parse_exposition(metrics.render()[0].decode())
    finally:
        for handle in extra:
            handle.close()
    assert samples[("process_open_fds", frozenset())] >= fds_before + 5


def test_no_snapshot_means_no_strategy_series() -> None:
    samples, _ = parse_exposition(OpsMetrics(INSTRUMENT).render()[0].decode())
    names = {name for name, _ in samples}
    assert not names & set(SPEC_NAMES)  # absent, not a made-up zero
    assert "hedgegrid_build_info" in names


async def test_metrics_listener_serves_published_snapshots(tmp_path: Path) -> None:
    first = make_snapshot()
    async with serve_ops(
        tmp_path, api_key=API_KEY, snapshot=first, prometheus_port=_free_port()
    ) as ops:
        assert ops.service.metrics_url != ops.url + "/metrics"
        samples, _, text = await _scrape(ops.service.metrics_url)
        for name, value in expected_spec_values(first).items():
            assert one(samples, name) == pytest.approx(value, rel=1e-12), name

        second = make_snapshot(
            realized_pnl=-40.5, long_ladder=(), trading_state=TradingState.PAUSED
        )
        ops.store.publish(second)  # pushed by the store, no polling involved
        samples, _, _ = await _scrape(ops.service.metrics_url)
        assert one(samples, "hedgegrid_realized_pnl_usdt") == -40.5
        assert one(samples, "hedgegrid_active_rungs_long") == 0.0
        assert one(samples, "hedgegrid_total_pnl_usdt") == pytest.approx(
            -40.5 + second.unrealized_pnl
        )
        assert one(samples, "hedgegrid_trading_state", state="paused") == 1.0

        # The same registry is on the API port, open without a key.
        api_samples, _, _ = await _scrape(ops.url + "/metrics")
        assert one(api_samples, "hedgegrid_realized_pnl_usdt") == -40.5

        # The metrics listener has nothing else on it.
        async with aiohttp.ClientSession() as http:
            base = ops.service.metrics_url.removesuffix("/metrics")
            async with http.get(base + "/health") as resp:
                assert resp.status == 200
            async with http.get(base + "/status", headers={"X-API-Key": API_KEY}) as resp:
                assert resp.status == 404
    for order in first.orders:
        assert order.client_order_id not in text  # no order ids in labels


async def test_api_requests_are_counted_by_route_template(tmp_path: Path) -> None:
    async with serve_ops(tmp_path, api_key=API_KEY, snapshot=make_snapshot()) as ops:
        for _ in range(3):
            await ops.call("GET", "/status", key=API_KEY)
        await ops.call("GET", "/status")
        await ops.call("GET", "/orders/O-L0", key=API_KEY)
        await ops.call("GET", "/docs/static/swagger-ui.css")
        await ops.call("DELETE", "/status", key=API_KEY)
        samples, types, text = await _scrape(ops.url + "/metrics")
    requests = "hedgegrid_api_requests_total"
    assert types[requests] == "counter"
    assert one(samples, requests, route="/status", method="GET", status="200") == 3
    assert one(samples, requests, route="/status", method="GET", status="401") == 1
    assert one(samples, requests, route="unmatched", method="GET", status="404") == 1
    assert one(samples, requests, route="/status", method="DELETE", status="405") == 1
    assert one(samples, requests, route="/docs/static/{filename}", method="GET", status="200") == 1
    assert "O-L0" not in text and "swagger-ui.css" not in text
    duration = "hedgegrid_api_request_duration_seconds"
    assert types[duration] == "histogram"
    assert one(samples, duration + "_count", route="/status", method="GET") == 4
    assert 0.0 < one(samples, duration + "_sum", route="/status", method="GET") < 5.0


async def test_loop_lag_gauge_sees_a_blocked_loop(tmp_path: Path) -> None:
    async with serve_ops(tmp_path) as ops:
        gauge = ops.service.metrics.loop_lag
        histogram = ops.service.metrics.loop_lag_probe

        def slow_probes() -> float:  # probes that waited longer than 0.25 s
            buckets = histogram.get({})
            return buckets[float("inf")] - buckets[0.25]

        await asyncio.sleep(0.6)  # the probe runs on an idle loop
        assert gauge.get({}) >= 0.0
        assert histogram.get({})[float("inf")] >= 20  # a probe every few ms
        slow_before = slow_probes()
        time.sleep(0.8)  # deliberately block the loop: the probe must notice
        for _ in range(20):
            await asyncio.sleep(0.01)
            if gauge.get({}) >= 0.25:
                break
        assert gauge.get({}) >= 0.25
        assert slow_probes() > slow_before  # the histogram saw the block too

"""Tests of the test helpers in ``tests/support/``: a helper that silently did nothing would
turn the tests that use it into comparisons of nothing."""

from __future__ import annotations

import socket
import time

import pytest
from aioprometheus import Counter, Gauge, Registry, render

from tests.spec_contract import INSTRUMENT, SPEC_METRICS
from tests.support.harness import spec_gauges_from_status
from tests.support.inprocess import make_snapshot
from tests.support.polling import wait_until
from tests.support.ports import free_port
from tests.support.prometheus import find, metric_types, parse_prometheus, value


def test_snapshot_helper_builds_consistent_values() -> None:
    snap = make_snapshot(throttle=0.5)
    assert snap.throttle == 0.5
    assert snap.open_orders == len(snap.orders)
    assert snap.last_bar_time is not None and snap.last_bar_time <= time.time()


def test_parser_reads_back_every_sample_aioprometheus_renders() -> None:
    registry = Registry()
    gauge = Gauge("g_value", "a gauge", const_labels={"instrument": INSTRUMENT}, registry=registry)
    counter = Counter(
        "c_total", "a counter", const_labels={"instrument": INSTRUMENT}, registry=registry
    )
    written = {"a": 1.25, "b": -1e-9, "c": 12345.678901234567, "with, comma=x": 3.0}
    for label, number in written.items():
        gauge.set({"k": label}, number)
    counter.set({"side": "buy"}, 7)
    body, _ = render(registry, [])
    text = body.decode()
    samples = parse_prometheus(text)
    assert {s.labels["k"]: s.value for s in find(samples, "g_value")} == written
    assert value(samples, "c_total", side="buy") == 7
    assert metric_types(text) == {"g_value": "gauge", "c_total": "counter"}


def test_parser_refuses_lines_it_cannot_read() -> None:
    with pytest.raises(ValueError):
        parse_prometheus('ok_metric 1\nbroken{label="x" 2\n')


def test_spec_gauge_mapping_covers_the_fifteen_spec_names() -> None:
    # The mapping from /status to metrics must name exactly the spec's gauges.
    status = {
        "positions": {
            side: {
                "inventory_usdt": 1.0,
                "quantity": 1.0,
                "entry_price": 1.0,
                "unrealized_pnl": 0.0,
            }
            for side in ("long", "short")
        },
        "open_orders": 0,
        "margin_ratio": 0.0,
        "maker_ratio": 1.0,
        "funding": {"rate": 0.0, "cost_1h_projected_usdt": 0.0},
        "pnl": {"realized": 0.0, "unrealized": 0.0, "total": 0.0},
        "uptime": 1.0,
        "last_bar": None,
    }
    names = set(spec_gauges_from_status(status, {"long_ladder": [], "short_ladder": []}))
    assert names == set(SPEC_METRICS)
    assert len(SPEC_METRICS) == len(set(SPEC_METRICS)) == 15


def test_free_port_can_be_bound() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_wait_until_returns_the_first_good_value_and_names_the_last_bad_one() -> None:
    values = iter([0, 1, 2, 3])
    assert wait_until(lambda: next(values), lambda v: v >= 2, timeout=5, interval=0) == 2

    def failing() -> int:
        raise RuntimeError("not yet")

    with pytest.raises(AssertionError, match="waiting for the answer; last: RuntimeError"):
        wait_until(failing, timeout=0.05, what="the answer", interval=0.01)

"""The fast exposition renderer says exactly what aioprometheus's own renderer says."""

from __future__ import annotations

import math

from aioprometheus import Counter, Gauge, Histogram, Registry, render
from prometheus_client.parser import text_string_to_metric_families

from hedgegrid_ops.ops.exposition import LabelKeys, count, observe, render_text
from hedgegrid_ops.ops.metrics import OpsMetrics
from tests.support.inprocess import make_snapshot

Series = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def series(text: str) -> tuple[Series, dict[str, str]]:
    samples: Series = {}
    types: dict[str, str] = {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples, types


def same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def test_every_series_of_the_real_metrics_matches_aioprometheus() -> None:
    metrics = OpsMetrics("BTCUSDT-PERP.BINANCE")
    for route, status in (("/status", 200), ("/flatten", 409), ("unmatched", 404)):
        metrics.observe_request(route, "GET", status, 0.003)
    metrics.observe_loop_lag(0.0007)
    ours, _ = metrics.render(make_snapshot())
    theirs, _ = render(metrics.registry, [])
    mine, my_types = series(ours.decode())
    reference, ref_types = series(theirs.decode())
    assert mine.keys() == reference.keys()
    assert all(same(mine[k], reference[k]) for k in mine)
    assert my_types == ref_types
    assert len(mine) > 100


def test_label_values_are_escaped_and_special_numbers_spelled_as_prometheus_does() -> None:
    registry = Registry()
    gauge = Gauge("g", "a gauge", const_labels={"instrument": "X"}, registry=registry)
    gauge.set({"path": 'a"b\\c\nd'}, float("nan"))
    gauge.set({"path": "up"}, float("inf"))
    gauge.set({"path": "down"}, float("-inf"))
    text = render_text(registry).decode()
    assert 'g{instrument="X",path="a\\"b\\\\c\\nd"} NaN' in text
    assert 'g{instrument="X",path="up"} +Inf' in text
    assert 'g{instrument="X",path="down"} -Inf' in text
    samples, _ = series(text)
    assert samples[("g", (("instrument", "X"), ("path", 'a"b\\c\nd')))] != 0  # NaN parses


def test_pre_encoded_keys_are_the_keys_the_collectors_use() -> None:
    registry = Registry()
    counter = Counter("c_total", "a counter", registry=registry)
    histogram = Histogram("h", "a histogram", registry=registry, buckets=(0.1, 1.0))
    keys = LabelKeys(("route", "status"))
    for _ in range(3):
        count(counter, keys.key(("/status", "200")))
    observe(histogram, LabelKeys(("route",)).key(("/status",)), 0.5)
    assert counter.get({"status": "200", "route": "/status"}) == 3
    assert histogram.get({"route": "/status"})[1.0] == 1
    assert histogram.get({"route": "/status"})[0.1] == 0

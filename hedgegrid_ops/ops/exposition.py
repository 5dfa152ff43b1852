"""Prometheus text exposition (format 0.0.4) of an aioprometheus registry, fast.

aioprometheus keeps each series under a JSON-encoded label key and, to render, decodes
every key, copies label dicts and formats line by line: about 4 ms for our ~120
samples, on the event loop, at every scrape. Here each series' label text is rendered
once per label key and cached, and numbers are written in Prometheus's own spelling
(``NaN``, ``+Inf``); a scrape then costs a small fraction of that. The data model
stays aioprometheus's (the collectors, their ``values`` and histogram objects), so the
rest of the code keeps using its API.

``record`` is the hot-path counterpart for per-request series: it updates a counter
or histogram under a label key that is computed once per distinct label set, not
JSON-encoded on every request as ``Counter.inc`` does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import orjson
from aioprometheus import Counter, Histogram, Registry
from aioprometheus.histogram import Histogram as Buckets
from aioprometheus.metricdict import MetricDict

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# (const labels, label key as aioprometheus stores it) -> rendered ``{k="v",...}``.
# Keyed by the labels' values, not by object identity: an id can be reused once a
# registry is gone, and another instrument's labels must never be served from here.
_label_text_cache: dict[tuple[tuple[tuple[str, object], ...], object], str] = {}


def _escape(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(pairs: Mapping[str, object]) -> str:
    if not pairs:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in pairs.items()) + "}"


def _number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _label_text(const: Mapping[str, object], key: object) -> str:
    cache_key = (tuple(const.items()), key)
    text = _label_text_cache.get(cache_key)
    if text is None:
        own = {} if key == MetricDict.EMPTY_KEY else orjson.loads(key)  # type: ignore[arg-type]
        text = _labels({**const, **own})
        _label_text_cache[cache_key] = text
    return text


def _bucket_lines(name: str, labels: str, hist: Buckets) -> list[str]:
    inner = labels[1:-1]
    prefix = f"{name}_bucket{{{inner}," if inner else f"{name}_bucket{{"
    lines = [f'{prefix}le="{_number(bound)}"}} {count}' for bound, count in hist.buckets.items()]
    lines.append(f"{name}_sum{labels} {_number(hist.sum)}")
    lines.append(f"{name}_count{labels} {hist.observations}")
    return lines


def render_text(registry: Registry) -> bytes:
    """Every collector of ``registry`` in the Prometheus text format."""
    out: list[str] = []
    for collector in registry.collectors.values():
        name = collector.name
        out.append(f"# HELP {name} {collector.doc}")
        out.append(f"# TYPE {name} {collector.kind.name}")
        const = collector.const_labels
        is_histogram = isinstance(collector, Histogram)
        for key, value in collector.values.store.items():
            labels = _label_text(const, key)
            if is_histogram:
                out.extend(_bucket_lines(name, labels, value))
            else:
                out.append(f"{name}{labels} {_number(value)}")
    out.append("")
    return "\n".join(out).encode()


class LabelKeys:
    """aioprometheus label keys for label tuples, encoded once per distinct tuple."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self._names = names
        self._keys: dict[tuple[str, ...], bytes] = {}

    def key(self, values: tuple[str, ...]) -> bytes:
        key = self._keys.get(values)
        if key is None:
            labels = dict(zip(self._names, values, strict=True))
            key = orjson.dumps(labels, option=orjson.OPT_SORT_KEYS)
            self._keys[values] = key
        return key


def count(counter: Counter, key: bytes) -> None:
    """``counter.inc`` for a pre-encoded label key."""
    store = counter.values.store
    store[key] = store.get(key, 0) + 1


def observe(histogram: Histogram, key: bytes, value: float) -> None:
    """``histogram.observe`` for a pre-encoded label key."""
    store = histogram.values.store
    hist = store.get(key)
    if hist is None:
        hist = store[key] = Buckets(*histogram.upper_bounds)
    hist.observe(value)

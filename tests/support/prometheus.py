"""Samples of a Prometheus text exposition, read with the official ``prometheus_client`` parser.

The integration tests compare every metric with /status; a parser that silently
dropped samples would turn those checks into comparisons of nothing, so this uses
the reference implementation rather than a regex.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from tests.spec_contract import INSTRUMENT


@dataclass(frozen=True)
class Sample:
    name: str
    labels: Mapping[str, str]
    value: float


def parse_prometheus(text: str) -> list[Sample]:
    """Every sample of the exposition; text the parser cannot read raises."""
    return [
        Sample(s.name, dict(s.labels), float(s.value))
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


def metric_types(text: str) -> dict[str, str]:
    """Metric type by the name its samples carry (a counter's ``_total`` included)."""
    out: dict[str, str] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, family.type)
    return out


def find(samples: list[Sample], name: str, **labels: str) -> list[Sample]:
    """Samples of ``name`` whose labels include ``labels`` (instrument added by default)."""
    want = {"instrument": INSTRUMENT, **labels}
    return [
        s for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in want.items())
    ]


def value(samples: list[Sample], name: str, **labels: str) -> float:
    """The single sample of ``name`` with exactly these labels (plus the instrument label)."""
    want = {"instrument": INSTRUMENT, **labels}
    hits = [s for s in samples if s.name == name and dict(s.labels) == want]
    assert len(hits) == 1, f"{name}{want}: expected one sample, got {hits}"
    return hits[0].value

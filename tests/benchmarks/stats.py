"""Summaries shared by the benchmark processes: latency percentiles and medians of runs."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from pathlib import Path

import orjson


def percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def latency_summary(seconds: Iterable[float]) -> dict[str, float]:
    """p50 / p99 / p99.9 / max in milliseconds, the figures the performance table shows."""
    ordered = sorted(seconds)
    if not ordered:
        return {"n": 0}
    return {
        "n": len(ordered),
        "p50_ms": round(percentile(ordered, 0.50) * 1e3, 3),
        "p99_ms": round(percentile(ordered, 0.99) * 1e3, 3),
        "p999_ms": round(percentile(ordered, 0.999) * 1e3, 3),
        "max_ms": round(ordered[-1] * 1e3, 3),
    }


def median_of(runs: list[Mapping[str, float]]) -> dict[str, float]:
    """Field-wise median of repeated runs (each figure's own median, as the docs state)."""
    keys = [k for k in runs[0] if all(isinstance(r.get(k), int | float) for r in runs)]
    return {k: round(statistics.median(float(r[k]) for r in runs), 3) for k in keys}


def histogram_quantiles(
    buckets: Mapping[float, float], quantiles: Iterable[float]
) -> dict[float, float]:
    """Quantiles from cumulative Prometheus buckets (upper bound -> count), as
    ``histogram_quantile`` would interpolate them; +Inf answers the largest finite bound."""
    bounds = sorted(buckets)
    total = buckets[bounds[-1]]
    out: dict[float, float] = {}
    for q in quantiles:
        if total <= 0:
            out[q] = 0.0
            continue
        rank = q * total
        lower_bound, lower_count = 0.0, 0.0
        for bound in bounds:
            count = buckets[bound]
            if count >= rank:
                if bound == float("inf"):
                    out[q] = lower_bound
                else:
                    span = count - lower_count
                    frac = (rank - lower_count) / span if span > 0 else 1.0
                    out[q] = lower_bound + (bound - lower_bound) * frac
                break
            lower_bound, lower_count = bound, count
    return out


def write_results(
    report: Mapping[str, object], rendered: str, json_out: Path, doc: Path, markers: tuple[str, str]
) -> None:
    """Write the full report as JSON and put ``rendered`` between ``markers`` in ``doc``
    (the rest of the page is prose and stays as written)."""
    json_out.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
    begin, end = markers
    text = doc.read_text(encoding="utf-8") if doc.is_file() else ""
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        doc.write_text(f"{head}{begin}\n{rendered}\n{end}{rest.split(end, 1)[1]}", encoding="utf-8")

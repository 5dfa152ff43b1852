"""Memory stays bounded over long runs: the cache purge keeps Nautilus's order history flat.

The real program runs the fast simulated market (``--speed 60``, about 50 orders a
second) with the kill switch off, so the grid never stops trading. Without the
purge every submitted order stays in Nautilus's cache (~7 KB each, the issue measured
376 → 425 MB over 7,200 orders). The short test, part of ``make test``, checks the
mechanism: the cache's order count stays bounded while thousands of orders go
through. The soak (``make soak``, at least 10 minutes) also shows the process's RSS
flat after warm-up.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import orjson
import pytest
import yaml

from tests.support.program import STRATEGY_YAML, RunningService
from tests.support.program import running_program as running_service

pytestmark = pytest.mark.e2e

SPEED = "60"


def no_kill_switch(tmp: Path) -> Path:
    """The default strategy with every breaker off (a halt would stop the orders)."""
    config = yaml.safe_load(STRATEGY_YAML.read_text())
    config["risk"] = {key: None for key in config["risk"]}
    path = tmp / "no_breakers.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def trading_events(service: RunningService, event: str) -> list[dict]:
    lines = (service.log_dir / "trading.log").read_bytes().splitlines()
    return [r for r in map(orjson.loads, lines) if r.get("event") == event]


def run_fast_market(tmp: Path, seconds: float, purge_interval: float, sample_every: float):
    """Run for ``seconds``; return RSS samples (seconds, KB), purge lines and the summary."""
    args = (
        "--strategy-config",
        str(no_kill_switch(tmp)),
        "--speed",
        SPEED,
        "--purge-interval",
        str(purge_interval),
    )
    samples: list[tuple[float, int]] = []
    with running_service(tmp, *args) as service:
        start = time.monotonic()
        while (elapsed := time.monotonic() - start) < seconds:
            assert service.proc.poll() is None, "the service died"
            samples.append((elapsed, rss_kb(service.proc.pid)))
            time.sleep(sample_every)
        print(f"rss samples (s, KB): {samples}")
        # A long fast run leaves a backlog of stdout lines for the test's reader to drain.
        assert service.stop(timeout=180) == 0
        purges = trading_events(service, "cache_purged")
        frozen = trading_events(service, "start_up_objects_frozen")
        summary = next(r for r in service.lines if r.get("event") == "run_summary")
    # Start-up objects are out of the collector's reach (no full-collection stalls).
    assert len(frozen) == 1 and frozen[0]["objects"] > 10_000, frozen
    return samples, purges, summary


def test_cache_purge_keeps_the_order_history_bounded(tmp_path: Path) -> None:
    samples, purges, summary = run_fast_market(tmp_path, 24, purge_interval=2, sample_every=4)
    submitted = summary["orders_submitted"]
    assert len(purges) >= 6, purges
    steady = [p["orders_in_cache"] for p in purges[1:]]
    purged = sum(p["closed_orders_purged"] for p in purges)
    print(f"orders submitted {submitted}, purged {purged}, cache sizes {steady}, rss {samples}")
    # Orders really flowed, most of them left the cache again, and what stays is at most
    # about two purge intervals' worth rather than the whole run.
    assert submitted > 500
    assert purged > submitted / 2
    assert max(steady) < submitted / 3


@pytest.mark.soak
def test_soak_rss_is_flat_after_warm_up(tmp_path: Path) -> None:
    seconds = float(os.environ.get("HEDGEGRID_SOAK_SECONDS", "600"))
    warm_up = min(180.0, seconds / 3)
    samples, purges, summary = run_fast_market(
        tmp_path, seconds, purge_interval=60, sample_every=10
    )
    after = [(t, kb) for t, kb in samples if t >= warm_up]
    assert len(after) >= 10
    # Least-squares slope of RSS over time after warm-up, in KB per minute.
    n = len(after)
    mean_t = sum(t for t, _ in after) / n
    mean_kb = sum(kb for _, kb in after) / n
    slope = sum((t - mean_t) * (kb - mean_kb) for t, kb in after) / sum(
        (t - mean_t) ** 2 for t, _ in after
    )
    per_minute = slope * 60
    growth = after[-1][1] - after[0][1]
    orders = summary["orders_submitted"]
    print(
        f"soak {seconds:.0f}s: orders {orders}, rss start {samples[0][1]} KB, after warm-up "
        f"{after[0][1]} KB, end {after[-1][1]} KB, slope {per_minute:.0f} KB/min, "
        f"purges {len(purges)}"
    )
    # Unpurged, ~7 KB per order at ~50 orders/s would grow ~20 MB a minute.
    assert per_minute < 1024, f"RSS grows {per_minute:.0f} KB/min after warm-up"
    assert growth < 10 * 1024, f"RSS grew {growth} KB after warm-up"

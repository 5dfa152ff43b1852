"""Properties of the seeded synthetic market (pure Python, no Nautilus)."""

from __future__ import annotations

import itertools
import math
import statistics
from collections import defaultdict
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hedgegrid_ops.venues.sim.process import (
    BURST,
    FUNDING_INTERVAL_NS,
    MINUTE_NS,
    REGIMES,
    SIDEWAYS,
    TREND_DOWN,
    TREND_UP,
    MinuteSample,
    PriceProcess,
)

START_NS = 1_704_067_200_000_000_000  # 2024-01-01T00:00Z


def run(seed: int, minutes: int, ticks: int = 12, start_ns: int = START_NS) -> list[MinuteSample]:
    return list(PriceProcess(seed, 60000.0, start_ns, ticks).minutes(minutes))


def is_tick_multiple(price: float, tick: float = 0.1) -> bool:
    return abs(price / tick - round(price / tick)) < 1e-6


def test_same_seed_same_samples() -> None:
    assert run(7, 120) == run(7, 120)


def test_different_seed_differs() -> None:
    a, b = run(7, 30), run(8, 30)
    assert [s.close for s in a] != [s.close for s in b]


def test_next_minute_and_minutes_agree() -> None:
    p1 = PriceProcess(3, 60000.0, START_NS, 6)
    p2 = PriceProcess(3, 60000.0, START_NS, 6)
    assert [p1.next_minute() for _ in range(20)] == list(p2.minutes(20))


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), ticks=st.integers(1, 20))
def test_tick_invariants(seed: int, ticks: int) -> None:
    previous_aggressor: str | None = None
    for sample in run(seed, 40, ticks=ticks):
        assert len(sample.ticks) == ticks
        for t in sample.ticks:
            for price in (t.bid, t.ask, t.trade_price):
                assert is_tick_multiple(price), price
            assert t.bid < t.ask
            assert 0.1 - 1e-9 <= t.ask - t.bid <= 0.5 + 1e-9
            assert t.trade_price == (t.ask if t.aggressor == "BUY" else t.bid)
            assert t.aggressor != previous_aggressor
            previous_aggressor = t.aggressor
            for size in (t.bid_size, t.ask_size, t.trade_size):
                assert size >= 0.001
                assert abs(size * 1000 - round(size * 1000)) < 1e-6
            assert sample.ts_ns < t.ts_ns < sample.close_ns


def test_bar_equals_tick_extremes_and_sums() -> None:
    for sample in run(7, 240):
        trades = [t.trade_price for t in sample.ticks]
        assert sample.open == trades[0]
        assert sample.close == trades[-1]
        assert sample.high == max(trades)
        assert sample.low == min(trades)
        assert sample.volume == pytest.approx(sum(t.trade_size for t in sample.ticks), abs=1e-9)


def test_minutes_are_contiguous_from_floored_start() -> None:
    unaligned = START_NS + 17 * 1_000_000_000 + 5
    samples = run(1, 10, start_ns=unaligned)
    assert samples[0].ts_ns == START_NS
    for a, b in itertools.pairwise(samples):
        assert b.ts_ns == a.close_ns == a.ts_ns + MINUTE_NS
        assert a.ticks[-1].ts_ns < b.ticks[0].ts_ns


@pytest.mark.parametrize("seed", [7, 0, 1, 2, 3, 42, 1234, 987654321])
@pytest.mark.parametrize("ticks", [12, 4])
def test_six_hours_visit_every_regime(seed: int, ticks: int) -> None:
    seen = {s.regime for s in run(seed, 360, ticks=ticks)}
    assert seen == set(REGIMES)


def test_regime_durations_respect_bounds() -> None:
    process = PriceProcess(5, 60000.0, START_NS, 2, regime_minutes=(20, 90))
    regimes = [s.regime for s in process.minutes(3000)]
    runs: list[tuple[str, int]] = []
    for regime in regimes:
        if runs and runs[-1][0] == regime:
            runs[-1] = (regime, runs[-1][1] + 1)
        else:
            runs.append((regime, 1))
    # The first and last runs may be cut by the window; inner runs must be whole.
    for regime, length in runs[1:-1]:
        lo, hi = (6, 30) if regime == BURST else (20, 90)
        assert lo <= length <= hi, (regime, length)


def test_per_minute_volatility_is_realistic() -> None:
    returns: dict[str, list[float]] = defaultdict(list)
    for seed in (7, 8):
        samples = run(seed, 24 * 60, ticks=4)
        for a, b in itertools.pairwise(samples):
            returns[b.regime].append(math.log(b.close / a.close) * 1e4)
    vol = {regime: statistics.pstdev(r) for regime, r in returns.items()}
    assert 5.0 <= vol[SIDEWAYS] <= 15.0
    assert vol[BURST] > 2 * vol[SIDEWAYS]
    assert statistics.mean(returns[TREND_UP]) > 0 > statistics.mean(returns[TREND_DOWN])


def test_funding_time_on_eight_hour_grid() -> None:
    for sample in run(7, 24 * 60, ticks=1):
        nxt = sample.next_funding_ns
        assert nxt % FUNDING_INTERVAL_NS == 0
        assert sample.close_ns < nxt <= sample.close_ns + FUNDING_INTERVAL_NS
        hour = datetime.fromtimestamp(nxt / 1e9, tz=UTC)
        assert (hour.hour, hour.minute) in {(0, 0), (8, 0), (16, 0)}


@pytest.mark.parametrize("seed", [7, 21, 99])
def test_funding_sign_follows_regime_on_average(seed: int) -> None:
    rates: dict[str, list[float]] = defaultdict(list)
    for sample in run(seed, 48 * 60, ticks=1):
        rates[sample.regime].append(sample.funding_rate)
    mean = {regime: statistics.mean(r) for regime, r in rates.items()}
    assert mean[TREND_UP] > 0.00005
    assert mean[TREND_DOWN] < -0.00005
    assert 0.0 < mean[SIDEWAYS] < 0.0003
    assert all(abs(r) <= 0.003 for rs in rates.values() for r in rs)


def test_mark_price_tracks_mid() -> None:
    for sample in run(7, 120):
        last = sample.ticks[-1]
        assert is_tick_multiple(sample.mark_price)
        assert abs(sample.mark_price - (last.bid + last.ask) / 2) <= 0.05 + 1e-9


@pytest.mark.parametrize(
    "kwargs",
    [
        {"initial_price": 0.5},
        {"ticks_per_minute": 0},
        {"regime_minutes": (10, 5)},
        {"regime_minutes": (0, 5)},
        {"start_ns": -1},
    ],
)
def test_rejects_bad_arguments(kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {
        "seed": 1,
        "initial_price": 60000.0,
        "start_ns": START_NS,
        "ticks_per_minute": 12,
    }
    args.update(kwargs)
    with pytest.raises(ValueError):
        PriceProcess(**args)  # type: ignore[arg-type]

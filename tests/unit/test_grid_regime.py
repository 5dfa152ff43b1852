"""Regime detector: hand-computed Wilder ADX/EMA, then behaviour on synthetic series."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hedgegrid_ops.grid.regime import RegimeDetector
from hedgegrid_ops.grid.types import Regime

# (high, low, close)
HAND_BARS = [
    (10.0, 8.0, 9.0),
    (11.0, 9.0, 10.5),
    (12.0, 10.0, 11.0),
    (11.5, 9.5, 10.0),
    (12.0, 10.0, 11.5),
    (13.0, 9.0, 12.0),  # outside bar: up move 1 == down move 1 -> neither counts
    (15.0, 8.5, 14.0),  # up 2 > down 0.5 -> only +DM
]


def test_adx_and_ema_by_hand() -> None:
    det = RegimeDetector(ema_fast=2, ema_slow=3, adx_period=2, adx_trend_on=25, adx_trend_off=20)
    seen_adx = []
    seen_ema = []
    for bar in HAND_BARS:
        det.update(*bar)
        seen_adx.append(det.adx)
        seen_ema.append((det.ema_fast_value, det.ema_slow_value))
    # Bars 2-3: TR 2, 2; +DM 1, 1; -DM 0, 0 -> sums 4, 2, 0 -> +DI 50, -DI 0, DX 100.
    # Bar 4: TR 2, -DM 0.5 -> STR 4 - 2 + 2 = 4, S+DM 2 - 1 = 1, S-DM 0.5
    #        -> +DI 25, -DI 12.5, DX = 100 * 12.5 / 37.5; first ADX = mean of the two DX.
    dx4 = 100 * 12.5 / 37.5
    adx4 = (100 + dx4) / 2
    # Bar 5: TR 2, +DM 0.5 -> STR 4, S+DM 1 - 0.5 + 0.5 = 1, S-DM 0.5 - 0.25 = 0.25
    #        -> +DI 25, -DI 6.25, DX = 100 * 18.75 / 31.25 = 60; ADX = (adx4 * 1 + 60) / 2.
    adx5 = (adx4 + 60) / 2
    assert seen_adx[:3] == [None, None, None]
    assert seen_adx[3] == pytest.approx(adx4)
    assert seen_adx[4] == pytest.approx(adx5)
    # Bar 6: TR max(4, 1.5, 2.5) = 4, no DM -> STR 4 - 2 + 4 = 6, S+DM 0.5, S-DM 0.125
    #        -> DX = 100 * (0.5 - 0.125) / (0.5 + 0.125) = 60 (the 1/STR factor cancels).
    adx6 = (adx5 + 60) / 2
    # Bar 7: TR max(6.5, 3, 3.5) = 6.5, +DM 2 -> STR 6 - 3 + 6.5, S+DM 0.25 + 2, S-DM 0.0625.
    dx7 = 100 * (2.25 - 0.0625) / (2.25 + 0.0625)
    adx7 = (adx6 + dx7) / 2
    assert seen_adx[5] == pytest.approx(adx6)
    assert seen_adx[6] == pytest.approx(adx7)
    # Fast EMA (2): mean seed 9, (9 + 10.5) / 2 = 9.75, then alpha = 2/3.
    ema3 = 9.75 + 2 / 3 * (11 - 9.75)
    ema4 = ema3 + 2 / 3 * (10 - ema3)
    ema5 = ema4 + 2 / 3 * (11.5 - ema4)
    assert seen_ema[4][0] == pytest.approx(ema5)
    # Slow EMA (3): mean of 9, 10.5, 11 then alpha = 0.5.
    slow3 = (9 + 10.5 + 11) / 3
    slow5 = (slow3 + 0.5 * (10 - slow3)) + 0.5 * (11.5 - (slow3 + 0.5 * (10 - slow3)))
    assert seen_ema[4][1] == pytest.approx(slow5)
    assert seen_ema[0] == (9.0, 9.0)


def test_nothing_before_first_bar() -> None:
    det = RegimeDetector(5, 20, 14, 25, 20)
    assert det.regime is Regime.SIDEWAYS
    assert (det.adx, det.ema_fast_value, det.ema_slow_value) == (None, None, None)
    assert not det.warmed_up


def uptrend(n: int, start: float = 100.0, step: float = 1.0) -> list[tuple[float, float, float]]:
    return [(start + i * step + 0.5, start + i * step - 0.5, start + i * step) for i in range(n)]


def test_warm_up_keeps_sideways() -> None:
    # max(ema_slow=10, 2 * adx_period=14) = 14 bars of warm-up.
    det = RegimeDetector(3, 10, 7, 25, 20)
    results = [det.update(*bar) for bar in uptrend(20)]
    assert results[:13] == [Regime.SIDEWAYS] * 13
    assert results[13:] == [Regime.UP] * 7
    det2 = RegimeDetector(3, 10, 7, 25, 20)
    flags = []
    for bar in uptrend(15):
        det2.update(*bar)
        flags.append(det2.warmed_up)
    assert flags.index(True) == 13


def test_warm_up_waits_for_slow_ema() -> None:
    # max(ema_slow=30, 2 * 5) = 30 bars.
    det = RegimeDetector(5, 30, 5, 25, 20)
    results = [det.update(*bar) for bar in uptrend(31)]
    assert results[28] is Regime.SIDEWAYS
    assert results[29] is Regime.UP


def test_steady_uptrend_ends_up_and_downtrend_ends_down() -> None:
    up = RegimeDetector(5, 20, 14, 25, 20)
    for bar in uptrend(80):
        up.update(*bar)
    assert up.regime is Regime.UP
    down = RegimeDetector(5, 20, 14, 25, 20)
    for bar in uptrend(80, start=500.0, step=-1.0):
        down.update(*bar)
    assert down.regime is Regime.DOWN


@settings(max_examples=25)
@given(st.lists(st.floats(-0.2, 0.2), min_size=300, max_size=300))
def test_flat_noisy_series_stays_sideways(noise: list[float]) -> None:
    det = RegimeDetector(5, 20, 14, 25, 20)
    for i, eps in enumerate(noise):
        close = 100.0 + (1.0 if i % 2 else -1.0) + eps
        high = close + 0.5 + abs(eps)
        low = close - 0.5 - abs(eps) / 2
        assert det.update(high, low, close) is Regime.SIDEWAYS
    assert det.warmed_up


def _trend_then_chop() -> list[tuple[float, float, float]]:
    """Strong uptrend, then a rising zig-zag that makes ADX decay slowly with fast > slow."""
    bars = uptrend(40)
    last = bars[-1][2]
    for i in range(60):
        close = last + (1.0 if i % 2 == 0 else 0.0)
        bars.append((close + 0.5, close - 0.5, close))
    return bars


def test_hysteresis_keeps_trend_just_below_trend_on() -> None:
    on, off = 40.0, 20.0
    sticky = RegimeDetector(5, 20, 7, on, off)
    plain = RegimeDetector(5, 20, 7, on, on)  # no hysteresis band
    in_band = 0
    previous = Regime.SIDEWAYS
    for bar in _trend_then_chop():
        regime = sticky.update(*bar)
        plain_regime = plain.update(*bar)
        adx, fast, slow = sticky.adx, sticky.ema_fast_value, sticky.ema_slow_value
        assert fast is not None and slow is not None
        if adx is None:
            assert regime is Regime.SIDEWAYS
        elif previous is Regime.UP and off <= adx < on and fast >= slow:
            # Just below trend_on but above trend_off: the trend is kept...
            assert regime is Regime.UP
            # ...where a detector without the band has already dropped it.
            assert plain_regime is Regime.SIDEWAYS
            in_band += 1
        elif adx < off:
            assert regime is Regime.SIDEWAYS
        previous = regime
    # The series must really have spent bars in the band while trending.
    assert in_band >= 3
    assert sticky.regime is Regime.SIDEWAYS


def test_reversal_passes_through_sideways() -> None:
    det = RegimeDetector(3, 8, 5, 25, 20)
    bars = uptrend(40) + uptrend(40, start=139.0, step=-2.0)
    history = [det.update(*bar) for bar in bars]
    assert Regime.UP in history
    assert history[-1] is Regime.DOWN
    for before, after in itertools.pairwise(history):
        assert {before, after} != {Regime.UP, Regime.DOWN}


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((20, 5, 14, 25, 20), "ema_fast"),
        ((5, 5, 14, 25, 20), "ema_fast"),
        ((0, 5, 14, 25, 20), "ema_fast"),
        ((5, 20, 0, 25, 20), "adx_period"),
        ((5, 20, 14, 25, 30), "adx_trend_off"),
        ((5, 20, 14, 0, 0), "adx_trend_on"),
        ((5, 20, 14, 120, 20), "adx_trend_on"),
        ((5, 20, 14, float("nan"), 20), "adx_trend_on"),
    ],
)
def test_constructor_validation(args: tuple[int, int, int, float, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        RegimeDetector(*args)


def test_bad_bars_rejected() -> None:
    det = RegimeDetector(5, 20, 14, 25, 20)
    with pytest.raises(ValueError):
        det.update(1.0, 2.0, 1.5)
    with pytest.raises(ValueError):
        det.update(float("nan"), 1.0, 1.0)

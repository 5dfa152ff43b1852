"""Throttle: endpoints by hand, monotonicity as properties."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hedgegrid_ops.grid.ladder import build_ladder
from hedgegrid_ops.grid.throttle import apply_throttle
from hedgegrid_ops.grid.types import GridParams, InstrumentRules

D = Decimal
PARAMS = GridParams(
    step_bps=20.0, levels_long=10, levels_short=7, base_qty=D("0.01"), qty_scale=1.0
)


def test_full_throttle_is_identity() -> None:
    assert apply_throttle(PARAMS, 1.0, 0.3, 2.5) is PARAMS


def test_zero_throttle_is_passive() -> None:
    out = apply_throttle(PARAMS, 0.0, 0.3, 2.5)
    # ceil(10 * 0.3) = 3, ceil(7 * 0.3) = ceil(2.1) = 3, 20 * 2.5 = 50.
    assert (out.levels_long, out.levels_short, out.step_bps) == (3, 3, 50.0)
    assert (out.base_qty, out.qty_scale) == (PARAMS.base_qty, PARAMS.qty_scale)


def test_zero_throttle_keeps_at_least_one_level_and_disabled_sides_off() -> None:
    params = GridParams(10.0, 5, 0, D(1), 1.0)
    out = apply_throttle(params, 0.0, 0.01, 1.0)
    # ceil(5 * 0.01) = 1; a side with 0 levels stays at 0.
    assert (out.levels_long, out.levels_short) == (1, 0)
    assert apply_throttle(params, 0.0, 0.0, 1.0).levels_long == 1


def test_fraction_is_exact_decimal() -> None:
    params = GridParams(10.0, 100, 100, D(1), 1.0)
    # 100 * 0.07 = 7 exactly (float gives 7.000000000000001, whose ceil would be 8).
    assert apply_throttle(params, 0.0, 0.07, 1.0).levels_long == 7


def test_half_throttle_interpolates() -> None:
    out = apply_throttle(PARAMS, 0.5, 0.3, 2.5)
    # long: 3 + 0.5 * (10 - 3) = 6.5 -> 7; short: 3 + 0.5 * (7 - 3) = 5;
    # step: 50 + 0.5 * (20 - 50) = 35.
    assert (out.levels_long, out.levels_short, out.step_bps) == (7, 5, 35.0)


@pytest.mark.parametrize("throttle", [-0.01, 1.01, float("nan"), float("inf")])
def test_throttle_out_of_range(throttle: float) -> None:
    with pytest.raises(ValueError, match="throttle"):
        apply_throttle(PARAMS, throttle, 0.3, 2.5)


def test_passive_settings_must_be_passive() -> None:
    with pytest.raises(ValueError, match="passive_level_fraction"):
        apply_throttle(PARAMS, 0.5, 1.5, 2.0)
    with pytest.raises(ValueError, match="passive_step_multiplier"):
        apply_throttle(PARAMS, 0.5, 0.5, 0.9)


throttles = st.floats(min_value=0.0, max_value=1.0)
params_st = st.builds(
    GridParams,
    step_bps=st.floats(min_value=0.1, max_value=200.0),
    levels_long=st.integers(0, 40),
    levels_short=st.integers(0, 40),
    base_qty=st.just(D(1)),
    qty_scale=st.just(1.0),
)
fractions = st.floats(min_value=0.0, max_value=1.0)
multipliers = st.floats(min_value=1.0, max_value=10.0)


@given(params_st, throttles, throttles, fractions, multipliers)
def test_throttle_is_monotonic(
    params: GridParams, t1: float, t2: float, fraction: float, multiplier: float
) -> None:
    low, high = sorted((t1, t2))
    a = apply_throttle(params, low, fraction, multiplier)
    b = apply_throttle(params, high, fraction, multiplier)
    assert a.levels_long <= b.levels_long <= params.levels_long
    assert a.levels_short <= b.levels_short <= params.levels_short
    assert a.step_bps >= b.step_bps >= params.step_bps
    assert (a.levels_long == 0) == (params.levels_long == 0)


@given(params_st, throttles, throttles, fractions, st.floats(min_value=1.0, max_value=3.0))
def test_fewer_orders_as_throttle_falls(
    params: GridParams, t1: float, t2: float, fraction: float, multiplier: float
) -> None:
    # Loose filters (tiny tick, no size limits): rung counts then depend only on the params.
    # With coarse ticks, collapsing rungs onto one tick can break this, see ladder docs.
    rules = InstrumentRules(D("1E-9"), D("0.001"), D(0), D(0))
    low, high = sorted((t1, t2))
    center = D(50000)
    rungs_low = build_ladder(center, apply_throttle(params, low, fraction, multiplier), rules)
    rungs_high = build_ladder(center, apply_throttle(params, high, fraction, multiplier), rules)
    assert len(rungs_low.long) <= len(rungs_high.long)
    assert len(rungs_low.short) <= len(rungs_high.short)
    assert len(rungs_low.rungs()) <= len(rungs_high.rungs())

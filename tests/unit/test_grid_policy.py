"""Regime policy and funding level scaling."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hedgegrid_ops.grid.policy import apply_regime_policy, scale_levels
from hedgegrid_ops.grid.types import GridParams, Regime

PARAMS = GridParams(
    step_bps=15.0, levels_long=10, levels_short=8, base_qty=Decimal(1), qty_scale=1.0
)


def test_uptrend_thins_shorts() -> None:
    out = apply_regime_policy(PARAMS, Regime.UP, 0.57)
    # floor(8 * 0.57) = floor(4.56) = 4
    assert (out.levels_long, out.levels_short) == (10, 4)
    assert out.step_bps == PARAMS.step_bps


def test_downtrend_thins_longs() -> None:
    out = apply_regime_policy(PARAMS, Regime.DOWN, 0.57)
    # floor(10 * 0.57) = floor(5.7) = 5
    assert (out.levels_long, out.levels_short) == (5, 8)


def test_sideways_is_unchanged() -> None:
    assert apply_regime_policy(PARAMS, Regime.SIDEWAYS, 0.5) == PARAMS


def test_fraction_zero_removes_counter_trend_side() -> None:
    assert apply_regime_policy(PARAMS, Regime.UP, 0.0).levels_short == 0


def test_floor_is_exact_on_typed_values() -> None:
    params = GridParams(15.0, 100, 100, Decimal(1), 1.0)
    # 100 * 0.57 = 57 exactly (float arithmetic gives 56.99999999999999).
    assert apply_regime_policy(params, Regime.DOWN, 0.57).levels_long == 57


@pytest.mark.parametrize("regime", list(Regime))
def test_regime_fraction_validated(regime: Regime) -> None:
    with pytest.raises(ValueError, match="counter_trend_level_fraction"):
        apply_regime_policy(PARAMS, regime, 1.5)


def test_scale_levels() -> None:
    out = scale_levels(PARAMS, 0.5, 0.25)
    # floor(10 * 0.5) = 5, floor(8 * 0.25) = 2
    assert (out.levels_long, out.levels_short) == (5, 2)
    assert scale_levels(PARAMS, 1.0, 1.0) == PARAMS
    assert scale_levels(PARAMS, 0.0, 0.3).levels_long == 0
    # floor(8 * 0.3) = floor(2.4) = 2
    assert scale_levels(PARAMS, 0.0, 0.3).levels_short == 2
    with pytest.raises(ValueError, match="short_scale"):
        scale_levels(PARAMS, 1.0, -0.1)


@given(
    st.integers(0, 200),
    st.integers(0, 200),
    st.floats(0.0, 1.0),
    st.floats(0.0, 1.0),
)
def test_scaling_never_adds_levels(long: int, short: int, a: float, b: float) -> None:
    params = GridParams(10.0, long, short, Decimal(1), 1.0)
    out = scale_levels(params, a, b)
    assert 0 <= out.levels_long <= long
    assert 0 <= out.levels_short <= short
    assert out.levels_long <= long * a + 1e-9
    assert out.levels_long > long * a - 1 - 1e-9

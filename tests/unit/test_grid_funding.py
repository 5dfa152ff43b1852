"""Funding guard: hand-computed steps, discreteness as a property."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hedgegrid_ops.grid.funding import FundingDecision, funding_guard, projected_funding_cost
from hedgegrid_ops.grid.types import PositionSide

MIN = 60_000_000_000
STEPS = (0.5, 0.25, 0.0)


def guard(
    rate: float, *, minutes_left: float | None = 10, long: float = 10_000.0, short: float = 4_000.0
) -> FundingDecision:
    next_ns = None if minutes_left is None else int(1_000 * MIN + minutes_left * MIN)
    return funding_guard(rate, 1_000 * MIN, next_ns, long, short, 30.0, 5.0, STEPS)


def test_projected_cost() -> None:
    # 0.0001 * (10000 - 4000) * 1 / 8 = 0.075
    assert projected_funding_cost(0.0001, 10_000, 4_000, 1, 8) == pytest.approx(0.075)
    # Negative rate, net short: shorts pay -> -0.0002 * (1000 - 5000) = 0.8 (we pay).
    assert projected_funding_cost(-0.0002, 1_000, 5_000, 8, 8) == pytest.approx(0.8)
    # Net long with negative rate: we receive.
    assert projected_funding_cost(-0.0002, 5_000, 1_000, 8, 8) == pytest.approx(-0.8)
    with pytest.raises(ValueError):
        projected_funding_cost(0.0001, 1, 1, 1, 0)


def test_outside_window_is_neutral() -> None:
    for decision in (
        guard(0.01, minutes_left=31),
        guard(0.01, minutes_left=None),
        guard(0.01, minutes_left=-1),
    ):
        assert decision == FundingDecision(1.0, 1.0, None, 0.0, in_window=False)


def test_window_edge_is_inside() -> None:
    assert guard(0.0006, minutes_left=30).in_window
    assert not guard(0.0006, minutes_left=0).in_window


def test_below_threshold_reports_cost_without_scaling() -> None:
    decision = guard(0.0004)  # 4 bps < 5 bps
    assert (decision.long_scale, decision.short_scale) == (1.0, 1.0)
    assert decision.paying_side is PositionSide.LONG
    assert decision.projected_cost_usdt == pytest.approx(0.0004 * 10_000)
    assert decision.in_window


@pytest.mark.parametrize(
    ("rate", "expected"),
    [
        (0.0006, 0.5),  # 6 bps / 5 = 1.2 -> floor(log2) = 0
        (0.0015, 0.25),  # 15 / 5 = 3 -> 1
        (0.0025, 0.0),  # 25 / 5 = 5 -> 2
        (0.01, 0.0),  # 100 / 5 = 20 -> 4, capped at the last step
    ],
)
def test_long_pays_positive_rate(rate: float, expected: float) -> None:
    decision = guard(rate)
    assert decision.long_scale == expected
    assert decision.short_scale == 1.0
    assert decision.paying_side is PositionSide.LONG
    assert decision.projected_cost_usdt == pytest.approx(rate * 10_000)


def test_short_pays_negative_rate() -> None:
    decision = guard(-0.0015)
    assert (decision.long_scale, decision.short_scale) == (1.0, 0.25)
    assert decision.paying_side is PositionSide.SHORT
    assert decision.projected_cost_usdt == pytest.approx(0.0015 * 4_000)


def test_exact_doubling_moves_one_step() -> None:
    # threshold 4 bps, rate 8 bps -> ratio exactly 2 -> step index 1.
    decision = funding_guard(0.0008, 0, MIN, 1.0, 1.0, 5.0, 4.0, STEPS)
    assert decision.long_scale == 0.25


def test_zero_rate_in_window() -> None:
    assert guard(0.0) == FundingDecision(1.0, 1.0, None, 0.0, in_window=True)


@pytest.mark.parametrize("steps", [(), (0.5, 0.5), (0.25, 0.5), (1.5, 0.5), (0.5, -0.1)])
def test_scale_steps_validated(steps: tuple[float, ...]) -> None:
    with pytest.raises(ValueError, match="scale"):
        funding_guard(0.001, 0, MIN, 1.0, 1.0, 5.0, 4.0, steps)


def test_threshold_validated() -> None:
    with pytest.raises(ValueError, match="threshold_bps"):
        funding_guard(0.001, 0, MIN, 1.0, 1.0, 5.0, 0.0, STEPS)


rates = st.floats(min_value=-0.05, max_value=0.05, allow_nan=False)
step_tuples = st.lists(
    st.floats(min_value=0.0, max_value=1.0), min_size=1, max_size=5, unique=True
).map(lambda xs: tuple(sorted(xs, reverse=True)))


@given(
    rates,
    st.integers(-10 * MIN, 120 * MIN) | st.none(),
    st.floats(0, 1e7),
    st.floats(0, 1e7),
    st.floats(0.0, 60.0),
    st.floats(0.01, 100.0),
    step_tuples,
)
def test_guard_only_takes_discrete_values(
    rate: float,
    offset: int | None,
    long: float,
    short: float,
    window: float,
    threshold: float,
    steps: tuple[float, ...],
) -> None:
    now = 5_000 * MIN
    next_ns = None if offset is None else now + offset
    decision = funding_guard(rate, now, next_ns, long, short, window, threshold, steps)
    allowed = {1.0, *steps}
    assert decision.long_scale in allowed
    assert decision.short_scale in allowed
    assert decision.long_scale == 1.0 or decision.short_scale == 1.0
    if not decision.in_window:
        assert (decision.long_scale, decision.short_scale) == (1.0, 1.0)
    if decision.long_scale < 1.0:
        assert decision.paying_side is PositionSide.LONG
    if decision.short_scale < 1.0:
        assert decision.paying_side is PositionSide.SHORT
    assert decision.projected_cost_usdt >= 0


@given(rates, rates, step_tuples)
def test_higher_rate_never_scales_less(r1: float, r2: float, steps: tuple[float, ...]) -> None:
    low, high = sorted((abs(r1), abs(r2)))
    a = funding_guard(low, 0, MIN, 1.0, 1.0, 5.0, 3.0, steps)
    b = funding_guard(high, 0, MIN, 1.0, 1.0, 5.0, 3.0, steps)
    assert b.long_scale <= a.long_scale

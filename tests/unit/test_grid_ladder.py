"""Ladder construction: expected prices are worked out by hand from the formula."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hedgegrid_ops.grid.ladder import build_ladder, needs_recenter
from hedgegrid_ops.grid.quantize import is_placeable
from hedgegrid_ops.grid.types import GridParams, InstrumentRules, Ladder, PositionSide, Rung

D = Decimal
LONG, SHORT = PositionSide.LONG, PositionSide.SHORT
BTC_RULES = InstrumentRules(D("0.1"), D("0.001"), D("0.001"), D("5"))


def prices(rungs: tuple[Rung, ...]) -> list[Decimal]:
    return [r.price for r in rungs]


def test_btc_example() -> None:
    params = GridParams(
        step_bps=25.0, levels_long=3, levels_short=3, base_qty=D("0.001"), qty_scale=1.5
    )
    ladder = build_ladder(D(30000), params, BTC_RULES)
    # 30000 * (1 -/+ 0.0025 * (i + 1)); all exactly on the 0.1 tick.
    assert prices(ladder.long) == [D(29925), D(29850), D(29775)]
    assert prices(ladder.short) == [D(30075), D(30150), D(30225)]
    # 0.001 * 1.5**i = 0.001, 0.0015, 0.00225 -> rounded down to 0.001 steps.
    assert [r.qty for r in ladder.long] == [D("0.001"), D("0.001"), D("0.002")]
    assert [r.qty for r in ladder.short] == [D("0.001"), D("0.001"), D("0.002")]
    assert [r.level for r in ladder.long] == [0, 1, 2]
    assert all(r.side is LONG for r in ladder.long)
    assert all(r.side is SHORT for r in ladder.short)
    assert ladder.center == D(30000)
    assert ladder.rungs() == ladder.long + ladder.short


def test_rounding_widens_the_grid() -> None:
    rules = InstrumentRules(D("0.01"), D("0.1"), D("0.1"), D(0))
    params = GridParams(10.0, 1, 1, D("1"), 1.0)
    ladder = build_ladder(D("100.03"), params, rules)
    # 100.03 * 0.999 = 99.92997 -> down to 99.92; 100.03 * 1.001 = 100.13003 -> up to 100.14.
    assert prices(ladder.long) == [D("99.92")]
    assert prices(ladder.short) == [D("100.14")]


def test_step_is_used_as_typed_not_as_binary_float() -> None:
    rules = InstrumentRules(D("0.1"), D("0.001"), D("0.001"), D(0))
    ladder = build_ladder(D(10000), GridParams(0.1, 1, 1, D("0.01"), 1.0), rules)
    # 10000 * (1 - 0.00001) = 9999.9 exactly, so it must not lose a tick to float error.
    assert prices(ladder.long) == [D("9999.9")]
    assert prices(ladder.short) == [D("10000.1")]


def test_unplaceable_rungs_are_dropped_not_resized() -> None:
    rules = InstrumentRules(D("0.01"), D("0.01"), D("0.01"), min_notional=D(9))
    params = GridParams(100.0, 3, 0, D("0.05"), 2.0)
    ladder = build_ladder(D(100), params, rules)
    # Prices 99, 98, 97; qty 0.05, 0.10, 0.20; notional 4.95 (< 9, dropped), 9.8, 19.4.
    assert [(r.level, r.price, r.qty) for r in ladder.long] == [
        (1, D(98), D("0.10")),
        (2, D(97), D("0.20")),
    ]
    assert ladder.short == ()


def test_rungs_above_max_qty_are_dropped() -> None:
    rules = InstrumentRules(D("0.01"), D("0.1"), D("0.1"), D(0), max_qty=D("1.5"))
    ladder = build_ladder(D(100), GridParams(100.0, 0, 3, D(1), 1.5), rules)
    # qty 1, 1.5, 2.25 -> 1.0, 1.5, 2.2: the last exceeds max_qty 1.5.
    assert [(r.level, r.qty) for r in ladder.short] == [(0, D(1)), (1, D("1.5"))]
    assert prices(ladder.short) == [D(101), D(102)]


def test_rungs_on_the_same_tick_keep_the_first() -> None:
    rules = InstrumentRules(D(1), D("0.1"), D("0.1"), D(0))
    ladder = build_ladder(D(100), GridParams(10.0, 11, 11, D(1), 1.0), rules)
    # LONG: 99.9 .. 99.0 (i=0..9) all floor to 99; i=10 gives 98.9 -> 98.
    assert [(r.level, r.price) for r in ladder.long] == [(0, D(99)), (10, D(98))]
    # SHORT: 100.1 .. 101.0 (i=0..9) all ceil to 101; i=10 gives 101.1 -> 102.
    assert [(r.level, r.price) for r in ladder.short] == [(0, D(101)), (10, D(102))]


def test_long_rungs_at_or_below_zero_are_dropped() -> None:
    rules = InstrumentRules(D("0.01"), D("0.1"), D("0.1"), D(0))
    ladder = build_ladder(D(100), GridParams(6000.0, 3, 1, D(1), 1.0), rules)
    # 100 * (1 - 0.6) = 40; then -20 and -80.
    assert prices(ladder.long) == [D(40)]
    assert prices(ladder.short) == [D(160)]


def test_zero_levels_give_empty_sides() -> None:
    ladder = build_ladder(D(30000), GridParams(25.0, 0, 0, D("0.001"), 1.0), BTC_RULES)
    assert ladder == Ladder(center=D(30000), long=(), short=())


@pytest.mark.parametrize(
    ("center", "params"),
    [
        (D(0), GridParams(25.0, 1, 1, D(1), 1.0)),
        (D(-1), GridParams(25.0, 1, 1, D(1), 1.0)),
        (D(100), GridParams(0.0, 1, 1, D(1), 1.0)),
        (D(100), GridParams(float("nan"), 1, 1, D(1), 1.0)),
        (D(100), GridParams(25.0, -1, 1, D(1), 1.0)),
        (D(100), GridParams(25.0, 1, 1, D(0), 1.0)),
        (D(100), GridParams(25.0, 1, 1, D(1), 0.0)),
    ],
)
def test_build_ladder_rejects_bad_input(center: Decimal, params: GridParams) -> None:
    with pytest.raises(ValueError):
        build_ladder(center, params, BTC_RULES)


def test_needs_recenter_is_strict() -> None:
    # |100.5 - 100| / 100 = 50 bps: not beyond a 50 bps trigger.
    assert not needs_recenter(D(100), D("100.5"), 50.0)
    assert needs_recenter(D(100), D("100.51"), 50.0)
    assert needs_recenter(D(100), D("99.49"), 50.0)
    assert not needs_recenter(D(100), D(100), 0.0)
    assert needs_recenter(D(100), D("100.01"), 0.0)
    with pytest.raises(ValueError):
        needs_recenter(D(0), D(1), 10.0)


# --- properties -------------------------------------------------------------------------

rules_strategy = st.builds(
    InstrumentRules,
    tick_size=st.sampled_from([D("0.0001"), D("0.01"), D("0.1"), D("0.5"), D(1), D(10)]),
    step_size=st.sampled_from([D("0.001"), D("0.01"), D("0.1"), D(1)]),
    min_qty=st.sampled_from([D(0), D("0.001"), D("0.01"), D(1)]),
    min_notional=st.sampled_from([D(0), D(5), D(100)]),
    max_qty=st.sampled_from([None, D(1), D(1000)]),
)
params_strategy = st.builds(
    GridParams,
    step_bps=st.floats(min_value=0.1, max_value=2000.0),
    levels_long=st.integers(0, 25),
    levels_short=st.integers(0, 25),
    base_qty=st.decimals(min_value=D("0.0001"), max_value=D(50), places=4),
    qty_scale=st.floats(min_value=0.5, max_value=2.0),
)
centers = st.decimals(min_value=D("0.001"), max_value=D(200000), places=3)


@settings(max_examples=300)
@given(centers, params_strategy, rules_strategy)
def test_every_rung_is_placeable_and_ordered(
    center: Decimal, params: GridParams, rules: InstrumentRules
) -> None:
    ladder = build_ladder(center, params, rules)
    for rung in ladder.rungs():
        assert is_placeable(rung.price, rung.qty, rules), rung
    long_prices = prices(ladder.long)
    short_prices = prices(ladder.short)
    assert all(p < center for p in long_prices)
    assert all(p > center for p in short_prices)
    assert all(a > b for a, b in itertools.pairwise(long_prices))
    assert all(a < b for a, b in itertools.pairwise(short_prices))
    for side_rungs, levels in (
        (ladder.long, params.levels_long),
        (ladder.short, params.levels_short),
    ):
        side_levels = [r.level for r in side_rungs]
        assert side_levels == sorted(set(side_levels))
        assert all(0 <= lv < levels for lv in side_levels)
        for rung in side_rungs:
            target = params.base_qty * D(repr(params.qty_scale)) ** rung.level
            assert rung.qty <= target < rung.qty + rules.step_size


@given(
    centers,
    st.floats(min_value=0.1, max_value=100.0),
    st.integers(1, 20),
)
def test_no_rung_is_lost_when_filters_are_loose(
    center: Decimal, step_bps: float, levels: int
) -> None:
    # With a tick far below the rung spacing and no size filters, every level survives.
    rules = InstrumentRules(D("1E-12"), D("0.001"), D(0), D(0))
    params = GridParams(step_bps, levels, levels, D(1), 1.0)
    ladder = build_ladder(center, params, rules)
    assert [r.level for r in ladder.long] == list(range(levels))
    assert [r.level for r in ladder.short] == list(range(levels))

"""Kill-switch breakers: each breaker by hand at its edge, the safety rules as properties."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hedgegrid_ops.grid.breakers import (
    Baselines,
    Breaker,
    RiskLimits,
    RiskSample,
    data_fresh,
    data_stale,
    drawdown_fraction,
    evaluate,
    start_baselines,
    update_peak,
)

D = Decimal
ALL = RiskLimits(
    max_drawdown_fraction=0.10,
    max_session_loss_fraction=0.15,
    max_position_qty=D("0.1"),
    max_position_notional_usdt=5000.0,
    max_margin_ratio=0.5,
    max_data_age_seconds=30.0,
)
CALM = RiskSample(
    equity=10_000.0,
    long_qty=D("0.01"),
    short_qty=D("0.02"),
    long_notional=600.0,
    short_notional=1200.0,
    margin_ratio=0.05,
    data_age_seconds=1.0,
)
BASE = Baselines(session_start_equity=10_000.0, peak_equity=10_000.0)


def sample(**changes: object) -> RiskSample:
    fields = {**CALM.__dict__, **changes}
    return RiskSample(**fields)  # type: ignore[arg-type]


def names(trips: tuple) -> list[str]:
    return [t.breaker.value for t in trips]


def test_calm_account_trips_nothing() -> None:
    assert evaluate(ALL, BASE, CALM) == ()


def test_drawdown_from_peak_not_from_start() -> None:
    base = Baselines(session_start_equity=10_000.0, peak_equity=12_000.0)
    # 12,000 -> 10,700 is 10.83 % from the peak, but a 7 % gain on the session.
    trips = evaluate(ALL, base, sample(equity=10_700.0))
    assert names(trips) == ["max_drawdown"]
    assert trips[0].measured == pytest.approx(1300 / 12000)
    assert trips[0].limit == 0.10
    assert trips[0].reason.startswith("max_drawdown: measured 0.108333 > limit 0.1")
    # Exactly at the limit is allowed: 12,000 -> 10,800 is 10.0 %.
    assert evaluate(ALL, base, sample(equity=10_800.0)) == ()


def test_session_loss_from_start_equity() -> None:
    limits = RiskLimits(max_session_loss_fraction=0.15)
    assert evaluate(limits, BASE, sample(equity=8_500.0)) == ()
    trips = evaluate(limits, BASE, sample(equity=8_499.0))
    assert names(trips) == ["max_session_loss"]
    assert trips[0].measured == pytest.approx(0.1501)


def test_position_qty_per_side_names_the_side() -> None:
    trips = evaluate(ALL, BASE, sample(short_qty=D("0.225")))
    assert [(t.breaker, t.detail, t.measured) for t in trips] == [
        (Breaker.MAX_POSITION_QTY, "short", 0.225)
    ]
    assert evaluate(ALL, BASE, sample(long_qty=D("0.1"))) == ()  # at the limit


def test_position_notional_per_side() -> None:
    trips = evaluate(ALL, BASE, sample(long_notional=5000.01))
    assert [(t.breaker.value, t.detail) for t in trips] == [("max_position_notional", "long")]


def test_margin_ratio_and_infinite_margin_ratio() -> None:
    assert names(evaluate(ALL, BASE, sample(margin_ratio=0.51))) == ["max_margin_ratio"]
    # Equity gone with margin in use is reported as +inf by the snapshot: must trip.
    assert names(evaluate(ALL, BASE, sample(margin_ratio=math.inf))) == ["max_margin_ratio"]


def test_stale_data() -> None:
    assert names(evaluate(ALL, BASE, sample(data_age_seconds=30.5))) == ["stale_data"]
    assert data_stale(ALL, None) is None  # no data yet: measured from start by the caller
    assert data_fresh(ALL, 2.0) and not data_fresh(ALL, 31.0) and not data_fresh(ALL, None)


def test_several_trips_are_all_reported_account_first() -> None:
    trips = evaluate(
        ALL, BASE, sample(equity=8_000.0, margin_ratio=0.9, short_qty=D("1"), data_age_seconds=99)
    )
    assert names(trips) == [
        "max_drawdown",
        "max_session_loss",
        "max_margin_ratio",
        "max_position_qty",
        "stale_data",
    ]


def test_baselines_need_a_real_equity() -> None:
    assert start_baselines(123.0) == Baselines(123.0, 123.0)
    for bad in (0.0, -1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="finite equity > 0"):
            start_baselines(bad)


# ---------------------------------------------------------------------- properties

finite = st.floats(min_value=-1e7, max_value=1e7, allow_nan=False)
positive = st.floats(min_value=1.0, max_value=1e7, allow_nan=False)
any_float = st.floats(allow_nan=True, allow_infinity=True)
fraction = st.floats(min_value=0.0, max_value=1.0)
qty = st.decimals(min_value=0, max_value=100, places=3)
age = st.one_of(st.none(), st.floats(min_value=0, max_value=1e6))
samples = st.builds(
    RiskSample,
    equity=any_float,
    long_qty=qty,
    short_qty=qty,
    long_notional=any_float,
    short_notional=any_float,
    margin_ratio=any_float,
    data_age_seconds=age,
)
limit_sets = st.builds(
    RiskLimits,
    max_drawdown_fraction=st.one_of(st.none(), fraction),
    max_session_loss_fraction=st.one_of(st.none(), fraction),
    max_position_qty=st.one_of(st.none(), qty),
    max_position_notional_usdt=st.one_of(st.none(), positive),
    max_margin_ratio=st.one_of(st.none(), st.floats(min_value=0, max_value=10)),
    max_data_age_seconds=st.one_of(st.none(), st.floats(min_value=0.1, max_value=1e5)),
)


@given(samples, positive, positive)
def test_disabled_limits_never_trip(s: RiskSample, start: float, peak: float) -> None:
    assert evaluate(RiskLimits(), Baselines(start, max(start, peak)), s) == ()


@given(limit_sets, samples, positive, st.floats(min_value=0.0, max_value=1.0))
def test_tighter_limits_trip_at_least_the_same_breakers(
    limits: RiskLimits, s: RiskSample, start: float, shrink: float
) -> None:
    def tighter(value: object) -> object:
        if value is None:
            return None
        if isinstance(value, Decimal):
            return (value * Decimal(str(shrink))).quantize(D("0.001"))
        return value * shrink

    tight = RiskLimits(**{k: tighter(v) for k, v in limits.__dict__.items()})
    base = update_peak(start_baselines(start), s.equity)
    loose_trips = {(t.breaker, t.detail) for t in evaluate(limits, base, s)}
    tight_trips = {(t.breaker, t.detail) for t in evaluate(tight, base, s)}
    assert loose_trips <= tight_trips


@given(limit_sets, samples, positive)
def test_every_trip_is_beyond_its_limit_or_unmeasurable(
    limits: RiskLimits, s: RiskSample, start: float
) -> None:
    for trip in evaluate(limits, update_peak(start_baselines(start), s.equity), s):
        assert not math.isfinite(trip.measured) or trip.measured > trip.limit, trip


@given(
    st.sampled_from(["equity", "margin_ratio", "long_notional", "short_notional"]),
    st.sampled_from([math.nan, math.inf, -math.inf]),
)
def test_unmeasurable_values_fail_safe(field: str, bad: float) -> None:
    assert evaluate(ALL, BASE, sample(**{field: bad})), f"{field}={bad} tripped nothing"


@given(positive, st.lists(any_float, max_size=30))
def test_peak_never_decreases_and_drawdown_is_never_negative(
    start: float, equities: list[float]
) -> None:
    base = start_baselines(start)
    for equity in equities:
        before = base.peak_equity
        base = update_peak(base, equity)
        assert base.peak_equity >= before
        assert base.session_start_equity == start
        dd = drawdown_fraction(base, equity)
        assert math.isnan(dd) or dd >= 0.0

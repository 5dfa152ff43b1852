"""The health rule and the JSON views, as pure functions of a snapshot and a clock."""

from __future__ import annotations

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from hedgegrid_ops.ops.views import health_view, ladders_view, orders_view, status_view
from hedgegrid_ops.snapshot import TradingState
from tests.support.inprocess import make_snapshot

NOW = 1_800_000_000.0


def test_no_snapshot_is_down() -> None:
    h = health_view(None, True, NOW, 120.0)
    assert h.http_status == 503
    assert h.body.status == "down"
    assert h.body.trading_state == "unknown"
    assert h.body.last_bar is None and h.body.bar_age_seconds is None


def test_halted_beats_a_fresh_bar() -> None:
    snap = make_snapshot(trading_state=TradingState.HALTED, last_bar_time=NOW - 1)
    h = health_view(snap, True, NOW, 120.0)
    assert (h.http_status, h.body.status) == (503, "down")


def test_stopped_node_is_down_even_with_fresh_data() -> None:
    snap = make_snapshot(last_bar_time=NOW - 1)
    assert health_view(snap, False, NOW, 120.0).body.status == "down"


@given(
    age=st.floats(min_value=0.0, max_value=10_000.0),
    max_age=st.floats(min_value=1.0, max_value=1_000.0),
    state=st.sampled_from(
        [TradingState.STARTING, TradingState.RUNNING, TradingState.PAUSED, TradingState.FLATTENING]
    ),
)
def test_bar_age_decides_between_healthy_and_degraded(
    age: float, max_age: float, state: TradingState
) -> None:
    snap = make_snapshot(trading_state=state, last_bar_time=NOW - age, started_at=NOW - 50_000)
    h = health_view(snap, True, NOW, max_age)
    assert h.body.bar_age_seconds == NOW - (NOW - age)
    assert h.body.uptime == 50_000.0
    if h.body.bar_age_seconds > max_age:
        assert (h.http_status, h.body.status) == (503, "degraded")
        assert h.body.reason is not msgspec.UNSET
    else:
        assert (h.http_status, h.body.status) == (200, "healthy")
        assert h.body.reason is msgspec.UNSET


def test_bar_from_the_future_counts_as_fresh() -> None:
    snap = make_snapshot(last_bar_time=NOW + 5)  # clock skew must not read as negative age
    h = health_view(snap, True, NOW, 120.0)
    assert h.body.bar_age_seconds == 0.0 and h.http_status == 200


def test_status_view_carries_every_counter_and_running_flag() -> None:
    for state in TradingState:
        snap = make_snapshot(trading_state=state)
        view = status_view(snap)
        assert view.running is (state == TradingState.RUNNING)
        assert msgspec.to_builtins(view)["counters"] == msgspec.to_builtins(snap.counters)
        assert view.state_reason == snap.state_reason


def test_views_are_json_serialisable_with_nulls() -> None:
    snap = make_snapshot(mid_price=None, grid_center=None, next_funding_time=None, orders=())
    for view in (status_view(snap), ladders_view(snap), orders_view(snap)):
        msgspec.json.encode(view)
    assert msgspec.to_builtins(orders_view(snap)) == {
        "orders": [],
        "count": 0,
        "timestamp": snap.timestamp,
        "foreign_orders": [],
    }
    assert ladders_view(snap).mid_price is None

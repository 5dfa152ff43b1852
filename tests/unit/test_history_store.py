"""The fill history's SQLite store on its own: paging, day totals, funding, reopening.

Real SQLite files in a temporary directory; the node-level test
(tests/integration/test_fill_history.py) checks the records against Nautilus.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from hedgegrid_ops.history.store import (
    SECONDS_PER_DAY,
    DayTotals,
    FillHistory,
    FillRecord,
    archive_cutoff,
    utc_day,
)
from hedgegrid_ops.state.store import DB_NAME, StateStore
from tests.support.fills import history_fill

DAY1 = 1_796_000_000.0  # 2026-11-30 UTC
DAY2 = DAY1 + 86_400
MIDNIGHT = DAY1 - DAY1 % 86_400  # the start of DAY1's UTC day


@contextmanager
def opened(directory: Path) -> Iterator[FillHistory]:
    """The history of a state directory opened as ``run`` opens it (writer thread started)."""
    state = StateStore.open(directory)
    state.start()
    try:
        yield FillHistory(state)
    finally:
        state.close()


def _fill(n: int, ts: float, realized: float, commission: float = 0.02) -> FillRecord:
    return history_fill(f"T-{n}", ts, realized, commission, price=60_000.0 + n)


def test_pages_newest_first_and_since(tmp_path: Path) -> None:
    with opened(tmp_path) as history:
        _pages(history)


def _pages(history: FillHistory) -> None:
    fills = [_fill(n, DAY1 + n, realized=-0.02) for n in range(1, 8)]
    for f in fills:
        history.record_fill(f)
    assert history.flush()
    got = history.fills(limit=1000)
    assert [s.seq for s in got] == list(range(7, 0, -1))
    assert [s.fill for s in got] == fills[::-1]
    assert [s.seq for s in history.fills(before=5, limit=2)] == [4, 3]
    assert [s.fill.ts for s in history.fills(since=DAY1 + 5)] == [DAY1 + 7, DAY1 + 6, DAY1 + 5]


def test_daily_totals_with_funding_and_other_fee_assets(tmp_path: Path) -> None:
    with opened(tmp_path) as history:
        _daily(history)


def _daily(history: FillHistory) -> None:
    history.record_fill(_fill(1, DAY1 + 10, realized=-0.02))
    history.record_fill(_fill(2, DAY1 + 20, realized=1.5))
    bnb = dataclasses.replace(_fill(3, DAY2 + 5, realized=0.75), commission_asset="BNB")
    history.record_fill(bnb)
    history.record_funding(DAY1 + 30, 0.4, estimated=True)
    history.record_funding(DAY2 + 30, -0.1, estimated=False)
    history.record_funding(DAY2 + 86_400, 0.2, estimated=False)  # a day with funding only
    assert history.flush()
    days = {d.day: d for d in history.daily()}
    assert list(days) == [utc_day(DAY1), utc_day(DAY2), utc_day(DAY2 + 86_400)]
    d1, d2, d3 = days.values()
    assert (d1.fills, d1.realized_pnl, d1.fees, d1.funding) == (2, pytest.approx(1.48), 0.04, 0.4)
    # A commission in BNB is not a USDT fee; the fill and its realized PnL still count.
    assert (d2.fills, d2.realized_pnl, d2.fees, d2.funding) == (1, 0.75, 0.0, -0.1)
    assert (d3.fills, d3.realized_pnl, d3.fees, d3.funding) == (0, 0.0, 0.0, 0.2)


def test_survives_reopening_and_ignores_a_fill_seen_twice(tmp_path: Path) -> None:
    with opened(tmp_path) as history:
        history.record_fill(_fill(1, DAY1, realized=-0.02))
    # closing committed what was queued
    with opened(tmp_path) as again:
        again.record_fill(_fill(1, DAY1, realized=-0.02))  # the same trade re-reported
        again.record_fill(_fill(2, DAY1 + 1, realized=0.5))
        assert again.flush()
        # Sequence numbers only grow (an ignored duplicate may leave a gap); T-1 keeps its own.
        got = [(s.seq, s.fill.trade_id) for s in again.fills()]
    assert [t for _, t in got] == ["T-2", "T-1"] and got[1][0] == 1 and got[0][0] > 1


def test_reads_do_not_wait_for_an_open_write(tmp_path: Path) -> None:
    """WAL: a reader sees the last commit while another connection holds a write lock."""
    with opened(tmp_path) as history:
        history.record_fill(_fill(1, DAY1, realized=0.0))
        assert history.flush()
        blocker = sqlite3.connect(tmp_path / DB_NAME, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            assert [s.seq for s in history.fills()] == [1]
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()


def test_a_state_directory_from_before_the_history_gains_its_tables(tmp_path: Path) -> None:
    """Migration 2 adds the tables to a state directory written by an older version."""
    from hedgegrid_ops.state.store import MIGRATIONS

    conn = sqlite3.connect(tmp_path / DB_NAME, isolation_level=None)
    conn.executescript(MIGRATIONS[0] + "; PRAGMA user_version = 1;")
    conn.execute("INSERT INTO kv (key, value, updated_at) VALUES ('control', '{}', 1.0)")
    conn.close()
    with opened(tmp_path) as history:
        history.record_fill(_fill(1, DAY1, realized=0.1))
        assert history.flush()
        assert [s.fill.trade_id for s in history.fills()] == ["T-1"]
    state = StateStore.open(tmp_path)
    try:
        assert state.get("control") == "{}"  # the older data is untouched
    finally:
        state.close()


def test_funding_the_strategy_publishes_reaches_the_day_totals(tmp_path: Path) -> None:
    """What the strategy publishes on FUNDING_BOOKED_TOPIC, through the recorder's handler."""
    from hedgegrid_ops.history.recorder import FillRecorder
    from hedgegrid_ops.history.topics import FundingBooked

    with opened(tmp_path) as history:
        recorder = FillRecorder(cache=None, history=history)
        recorder.on_funding(FundingBooked(0.25, int(DAY1 * 1e9), estimated=True))
        recorder.on_funding(FundingBooked(-0.05, int((DAY1 + 28_800) * 1e9), estimated=True))
        recorder.on_funding({"paid_usdt": 9.0})  # not a FundingBooked: ignored
        assert history.flush()
        (day,) = history.daily()
    assert (day.day, day.fills, day.funding) == (utc_day(DAY1), 0, pytest.approx(0.2))


def test_the_retention_cutoff_is_the_start_of_a_utc_day() -> None:
    newest = MIDNIGHT + 5 * SECONDS_PER_DAY + 3_600  # 01:00 on the sixth day
    assert archive_cutoff(newest, 0) == MIDNIGHT + 5 * SECONDS_PER_DAY
    assert archive_cutoff(newest, 2) == MIDNIGHT + 3 * SECONDS_PER_DAY
    assert utc_day(archive_cutoff(newest, 2)) == utc_day(MIDNIGHT + 3 * SECONDS_PER_DAY + 1)
    assert utc_day(archive_cutoff(newest, 2) - 0.001) == utc_day(MIDNIGHT + 2 * SECONDS_PER_DAY)


def _five_days_of_fills(history: FillHistory) -> list[FillRecord]:
    """Day k (1..5) gets k fills; one fill pays its commission in BNB; funding on day 2."""
    fills = [
        _fill(
            10 * day + n, MIDNIGHT + (day - 1) * SECONDS_PER_DAY + 60 * n, realized=0.1 * n - 0.05
        )
        for day in range(1, 6)
        for n in range(day)
    ]
    fills[3] = dataclasses.replace(fills[3], commission_asset="BNB")
    for f in fills:
        history.record_fill(f)
    history.record_funding(MIDNIGHT + SECONDS_PER_DAY + 10, 0.3, estimated=False)
    assert history.flush()
    return fills


def _same_days(got: list[DayTotals], expected: list[DayTotals]) -> None:
    assert [(d.day, d.fills, d.funding) for d in got] == [
        (d.day, d.fills, d.funding) for d in expected
    ]
    for g, e in zip(got, expected, strict=True):  # sums taken in another order
        assert (g.realized_pnl, g.fees) == (pytest.approx(e.realized_pnl), pytest.approx(e.fees))


def test_retention_folds_old_days_into_totals_and_pnl_daily_keeps_them(tmp_path: Path) -> None:
    with opened(tmp_path) as history:
        fills = _five_days_of_fills(history)
        before = history.daily()
        assert [d.fills for d in before] == [1, 2, 3, 4, 5]
        history.archive_old_fills(keep_days=1)
        assert history.flush()
        kept = history.fills(limit=1000)
        # The newest fill's day and the one before it stay, fill for fill, with their seq.
        assert [s.fill for s in kept] == fills[-9:][::-1]
        assert [s.seq for s in kept] == list(range(15, 6, -1))
        _same_days(history.daily(), before)
        # Only what was folded is in the totals table: days 1 to 3, 6 fills.
        folded = sqlite3.connect(tmp_path / DB_NAME).execute(
            "SELECT day, fills FROM fill_days ORDER BY day"
        )
        assert folded.fetchall() == [(d.day, d.fills) for d in before[:3]]

        # Nothing more to fold: a second pass changes nothing.
        history.archive_old_fills(keep_days=1)
        # A folded fill reported again (a restart's reconciliation) is not counted twice.
        history.record_fill(fills[0])
        assert history.flush()
        assert len(history.fills(limit=1000)) == 9
        _same_days(history.daily(), before)


def test_retention_follows_the_newest_fill_and_zero_keeps_only_its_day(tmp_path: Path) -> None:
    with opened(tmp_path) as history:
        _five_days_of_fills(history)
        history.archive_old_fills(keep_days=3)
        assert history.flush()
        assert {utc_day(s.fill.ts) for s in history.fills(limit=1000)} == {
            utc_day(MIDNIGHT + k * SECONDS_PER_DAY) for k in (1, 2, 3, 4)
        }
        before = history.daily()
        late = _fill(99, MIDNIGHT + 6 * SECONDS_PER_DAY, realized=2.0)  # a seventh day
        history.record_fill(late)
        history.archive_old_fills(keep_days=0)
        assert history.flush()
        assert [s.fill for s in history.fills(limit=1000)] == [late]
        _same_days(history.daily()[:-1], before)
        assert history.daily()[-1] == DayTotals(utc_day(late.ts), 2.0, 0.02, 0.0, 1)


def test_retention_on_an_empty_history_does_nothing(tmp_path: Path) -> None:
    with opened(tmp_path) as history:
        history.archive_old_fills(keep_days=1)
        assert history.flush()
        assert history.daily() == [] and history.fills() == []

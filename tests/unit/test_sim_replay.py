"""Parsing Binance kline dumps and expanding them into tick-level minutes."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from hedgegrid_ops.venues.sim.process import FUNDING_INTERVAL_NS, MINUTE_NS
from hedgegrid_ops.venues.sim.replay import (
    REPLAY_FUNDING_RATE,
    Kline,
    ReplayError,
    ReplayExhausted,
    ReplayProcess,
    load_binance_klines,
)
from tests.data.make_klines import FIXTURE_PATH, FIXTURE_ROWS, kline_rows, write_klines


@pytest.fixture(scope="module")
def rows() -> list[list[str]]:
    return kline_rows(rows=50)


def test_parses_milliseconds_without_header(tmp_path: Path, rows: list[list[str]]) -> None:
    klines = load_binance_klines(write_klines(tmp_path / "k.csv", rows))
    assert len(klines) == len(rows)
    for kline, row in zip(klines, rows, strict=True):
        assert kline.open_time_ns == int(row[0]) * 1_000_000
        assert kline.close_time_ns == int(row[6]) * 1_000_000
        assert (kline.open, kline.high, kline.low, kline.close, kline.volume) == tuple(
            float(x) for x in row[1:6]
        )
        assert kline.trades == int(row[8])


def test_microseconds_with_header_give_same_klines(tmp_path: Path) -> None:
    ms = load_binance_klines(write_klines(tmp_path / "ms.csv", kline_rows(rows=20, unit="ms")))
    us_rows = kline_rows(rows=20, unit="us")
    assert len(us_rows[0][0]) == 16  # really a microsecond timestamp
    us = load_binance_klines(write_klines(tmp_path / "us.csv", us_rows, header=True))
    # close_time is "last unit of the minute", so it differs by the unit's resolution.
    assert [replace(k, close_time_ns=None) for k in us] == [
        replace(k, close_time_ns=None) for k in ms
    ]
    for a, b in zip(us, ms, strict=True):
        assert a.close_time_ns is not None and b.close_time_ns is not None
        assert a.close_time_ns - b.close_time_ns == 1_000_000 - 1_000


def test_minimal_six_columns_and_blank_lines(tmp_path: Path, rows: list[list[str]]) -> None:
    path = tmp_path / "short.csv"
    path.write_text("\n".join(",".join(r[:6]) for r in rows[:3]) + "\n\n", encoding="utf-8")
    klines = load_binance_klines(path)
    assert [k.open_time_ns for k in klines] == [int(r[0]) * 1_000_000 for r in rows[:3]]
    assert klines[0].close_time_ns is None


def test_committed_fixture_loads_and_is_reproducible(tmp_path: Path) -> None:
    klines = load_binance_klines(FIXTURE_PATH)
    assert len(klines) == FIXTURE_ROWS
    regenerated = write_klines(tmp_path / "again.csv", kline_rows())
    assert regenerated.read_text() == FIXTURE_PATH.read_text()


def _corrupt(rows: list[list[str]], index: int, column: int, value: str) -> list[list[str]]:
    out = [list(r) for r in rows]
    out[index][column] = value
    return out


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [
        (lambda r: _corrupt(r, 4, 2, "abc"), "high is not a number"),
        (lambda r: _corrupt(r, 4, 1, "nan"), "open is not finite"),
        (lambda r: _corrupt(r, 4, 0, "12x"), "open_time is not an integer"),
        (lambda r: _corrupt(r, 4, 5, "-1"), "volume must be >= 0"),
        (lambda r: _corrupt(r, 4, 3, "999999"), "inconsistent OHLC"),
        (lambda r: _corrupt(r, 4, 1, "0"), "prices must be positive"),
        (lambda r: _corrupt(r, 4, 0, r[3][0]), "not after the previous row"),
        (lambda r: _corrupt(r, 4, 0, r[4][0] + "000"), "unit changed"),
        (lambda r: [*r[:4], r[4][:3], *r[5:]], "expected at least 6 columns"),
        (lambda r: [*r[:4], [*r[4], "x"], *r[5:]], "expected at most 12 columns"),
    ],
)
@pytest.mark.parametrize("header", [False, True])
def test_bad_row_names_file_and_line(
    tmp_path: Path, rows: list[list[str]], mutate, problem: str, header: bool
) -> None:
    path = write_klines(tmp_path / "bad.csv", mutate(rows), header=header)
    line = 5 + (1 if header else 0)
    with pytest.raises(ReplayError, match=rf"^{re.escape(str(path))}:{line}: .*{problem}"):
        load_binance_klines(path)


def test_empty_and_missing_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("open_time,open,high,low,close,volume\n", encoding="utf-8")
    with pytest.raises(ReplayError, match="no kline rows"):
        load_binance_klines(empty)
    with pytest.raises(ReplayError, match=r"missing\.csv:0: cannot open"):
        load_binance_klines(tmp_path / "missing.csv")


def _kline(minute: int, o: float, h: float, low: float, c: float, v: float = 2.5) -> Kline:
    return Kline(
        open_time_ns=1_717_200_000_000_000_000 + minute * MINUTE_NS,
        open=o,
        high=h,
        low=low,
        close=c,
        volume=v,
    )


@pytest.mark.parametrize("ticks", [4, 5, 12, 30])
def test_ticks_walk_open_extremes_close(ticks: int) -> None:
    klines = load_binance_klines(FIXTURE_PATH)
    process = ReplayProcess(klines, ticks_per_minute=ticks, seed=1)
    for kline, sample in zip(klines, process.minutes(len(klines)), strict=True):
        trades = [t.trade_price for t in sample.ticks]
        assert len(trades) == ticks
        assert trades[0] == sample.open == kline.open
        assert trades[-1] == sample.close == kline.close
        assert max(trades) == sample.high == kline.high
        assert min(trades) == sample.low == kline.low
        assert sample.ts_ns == kline.open_time_ns
        for t in sample.ticks:
            assert t.bid < t.ask
            assert t.trade_price == (t.ask if t.aggressor == "BUY" else t.bid)
            assert sample.ts_ns < t.ts_ns < sample.close_ns
    assert process.exhausted


def test_extreme_order_follows_bar_direction() -> None:
    up = _kline(0, 100.0, 110.0, 95.0, 108.0)
    down = _kline(1, 100.0, 104.0, 90.0, 92.0)
    process = ReplayProcess([up, down], ticks_per_minute=4, seed=0)
    assert [t.trade_price for t in process.next_minute().ticks] == [100.0, 95.0, 110.0, 108.0]
    assert [t.trade_price for t in process.next_minute().ticks] == [100.0, 104.0, 90.0, 92.0]


def test_volume_split_across_trades() -> None:
    process = ReplayProcess([_kline(0, 100.0, 101.0, 99.0, 100.5, v=1.234)], 5, seed=0)
    sample = process.next_minute()
    assert sum(round(t.trade_size * 1000) for t in sample.ticks) == 1234
    assert sample.volume == 1.234


def test_exhaustion_and_minutes_stop_early() -> None:
    klines = [_kline(i, 100.0, 101.0, 99.0, 100.0) for i in range(3)]
    process = ReplayProcess(klines, ticks_per_minute=4, seed=0)
    assert process.remaining == 3
    assert len(list(process.minutes(10))) == 3
    assert process.exhausted
    with pytest.raises(ReplayExhausted):
        process.next_minute()


def test_funding_constant_on_eight_hour_grid() -> None:
    klines = load_binance_klines(FIXTURE_PATH)
    for sample in ReplayProcess(klines, 4, seed=0).minutes(len(klines)):
        assert sample.funding_rate == REPLAY_FUNDING_RATE
        assert sample.next_funding_ns % FUNDING_INTERVAL_NS == 0
        assert sample.close_ns < sample.next_funding_ns <= sample.close_ns + FUNDING_INTERVAL_NS


def test_same_seed_same_ticks_different_seed_differs() -> None:
    klines = load_binance_klines(FIXTURE_PATH)[:40]

    def ticks(seed: int) -> list[object]:
        return [s.ticks for s in ReplayProcess(klines, 12, seed=seed).minutes(40)]

    assert ticks(3) == ticks(3)
    assert ticks(3) != ticks(4)


def test_rejects_too_few_ticks() -> None:
    with pytest.raises(ValueError, match=">= 4"):
        ReplayProcess([_kline(0, 1.0, 1.0, 1.0, 1.0)], ticks_per_minute=3, seed=0)

"""Replay of Binance public 1-minute kline dumps as tick-level minutes.

Binance publishes klines (``data.binance.vision``) but not the quotes the sandbox
needs to fill orders, so each kline is expanded into a short synthetic tick path
that visits open, both extremes and close. Like :mod:`.process`, this module has no
Nautilus import; the conversion to Nautilus objects lives in :mod:`.convert`.
"""

from __future__ import annotations

import csv
import io
import random
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from hedgegrid_ops.venues.sim.process import (
    DEFAULT_BOOK_TOP_STEPS,
    MINUTE_NS,
    PRICE_TICK,
    SIZE_STEP,
    Aggressor,
    MinuteSample,
    TickSample,
    check_book_top,
    make_tick,
    next_funding_ns,
    quote_around_trade,
    steps_to_size,
    tick_timestamps,
    ticks_to_price,
)

KLINE_HEADER: tuple[str, ...] = (
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time",
    "quote_volume",
    "count",
    "taker_buy_volume",
    "taker_buy_quote_volume",
    "ignore",
)
REPLAY_FUNDING_RATE = 0.0001
REPLAY_REGIME = "replay"

# Binance switched spot dumps from milliseconds to microseconds in 2025. A
# millisecond timestamp stays below 1e14 until the year 5138 and a microsecond one
# is above it since 1973, so the magnitude identifies the unit unambiguously.
_MICROSECOND_THRESHOLD = 10**14
_MIN_COLUMNS = 6


class ReplayError(ValueError):
    """A kline file that cannot be replayed; the message names ``file:line``."""


class ReplayExhausted(LookupError):
    """Raised by :meth:`ReplayProcess.next_minute` after the last kline."""


@dataclass(frozen=True, slots=True)
class Kline:
    """One parsed kline row; times converted to nanoseconds whatever the file's unit."""

    open_time_ns: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    close_time_ns: int | None = None
    trades: int | None = None


def load_binance_klines(path: Path) -> list[Kline]:
    """Parse a Binance kline CSV (with or without header) into validated klines.

    Rows must be in strictly increasing open-time order, use one time unit
    throughout, and have consistent OHLC (``low <= open, close <= high``). Only
    the first six columns are required; ``close_time`` and ``count`` are read when
    present. Blank lines are ignored. A ``.zip`` (as Binance publishes them) must
    hold exactly one ``.csv``. Synchronous file I/O: call it through
    ``asyncio.to_thread`` from a running loop.
    """
    handle = _open_text(path)
    klines: list[Kline] = []
    unit_is_us: bool | None = None
    with handle:
        for line_no, row in enumerate(csv.reader(handle), start=1):
            if not row or all(not cell.strip() for cell in row):
                continue
            if not klines and unit_is_us is None and row[0].strip().lower() == "open_time":
                continue
            kline, row_is_us = _parse_row(path, line_no, row)
            if unit_is_us is None:
                unit_is_us = row_is_us
            elif unit_is_us != row_is_us:
                raise ReplayError(
                    f"{path}:{line_no}: open_time unit changed mid-file "
                    f"({'µs' if row_is_us else 'ms'} after {'µs' if unit_is_us else 'ms'})"
                )
            if klines and kline.open_time_ns <= klines[-1].open_time_ns:
                raise ReplayError(
                    f"{path}:{line_no}: open_time {row[0].strip()} is not after the previous row"
                )
            klines.append(kline)
    if not klines:
        raise ReplayError(f"{path}:0: no kline rows")
    return klines


def _open_text(path: Path) -> io.TextIOBase:
    """The CSV text of ``path``: the file itself, or the single CSV inside a zip."""
    try:
        if path.suffix.lower() != ".zip":
            return path.open(newline="", encoding="utf-8")
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise ReplayError(f"{path}:0: cannot open ({reason})") from exc
    members = [n for n in archive.namelist() if n.lower().endswith(".csv")]
    if len(members) != 1:
        archive.close()
        raise ReplayError(f"{path}:0: expected one .csv in the zip, found {len(members)}")
    return io.TextIOWrapper(archive.open(members[0]), encoding="utf-8", newline="")


def load_kline_files(paths: Sequence[Path]) -> list[Kline]:
    """Several kline files (plain or zipped) in the given order, as one time series.

    Each file is validated by :func:`load_binance_klines`; a file must start after the
    previous one ends, so daily or monthly dumps can be replayed back to back.
    """
    klines: list[Kline] = []
    for path in paths:
        more = load_binance_klines(path)
        if klines and more[0].open_time_ns <= klines[-1].open_time_ns:
            raise ReplayError(f"{path}:1: starts before the end of the previous file")
        klines.extend(more)
    return klines


def _parse_row(path: Path, line_no: int, row: Sequence[str]) -> tuple[Kline, bool]:
    where = f"{path}:{line_no}"
    if len(row) < _MIN_COLUMNS:
        raise ReplayError(f"{where}: expected at least {_MIN_COLUMNS} columns, got {len(row)}")
    if len(row) > len(KLINE_HEADER):
        raise ReplayError(f"{where}: expected at most {len(KLINE_HEADER)} columns, got {len(row)}")
    open_time = _int_field(where, "open_time", row[0])
    if open_time <= 0:
        raise ReplayError(f"{where}: open_time must be positive, got {open_time}")
    is_us = open_time >= _MICROSECOND_THRESHOLD
    to_ns = 1_000 if is_us else 1_000_000
    o, h, low, c, v = (
        _float_field(where, name, row[i]) for i, name in enumerate(KLINE_HEADER[1:6], start=1)
    )
    if min(o, h, low, c) <= 0:
        raise ReplayError(f"{where}: prices must be positive")
    if v < 0:
        raise ReplayError(f"{where}: volume must be >= 0, got {v}")
    if not (low <= min(o, c) and max(o, c) <= h):
        raise ReplayError(f"{where}: inconsistent OHLC (o={o} h={h} l={low} c={c})")
    close_time = _int_field(where, "close_time", row[6]) * to_ns if len(row) > 6 else None
    trades = _int_field(where, "count", row[8]) if len(row) > 8 else None
    kline = Kline(
        open_time_ns=open_time * to_ns,
        open=o,
        high=h,
        low=low,
        close=c,
        volume=v,
        close_time_ns=close_time,
        trades=trades,
    )
    return kline, is_us


def _int_field(where: str, name: str, text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise ReplayError(f"{where}: {name} is not an integer: {text!r}") from None


def _float_field(where: str, name: str, text: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise ReplayError(f"{where}: {name} is not a number: {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ReplayError(f"{where}: {name} is not finite: {text!r}")
    return value


class ReplayProcess:
    """Turns klines into :class:`MinuteSample` s with the same interface as ``PriceProcess``.

    Each kline becomes ``ticks_per_minute`` trades walking open → first extreme →
    second extreme → close, linearly with small seeded jitter kept inside the
    bar's range; the low is visited first on an up bar and the high first on a
    down bar (a coin flip for doji bars). Aggressors alternate and each quote is
    placed so the trade sits on the side it hit, with a seeded 1–3 tick spread.
    Trade sizes split the kline volume evenly (at least one 0.001 lot each), so
    the sample's volume can exceed the file's for near-empty minutes.

    Funding is not in kline dumps: every minute reports a constant +0.0001 (1 bp,
    Binance's default premium-free rate) with the next funding time on the
    00/08/16 UTC grid. The mark price is the mid of the minute's last quote.
    """

    def __init__(
        self,
        klines: Sequence[Kline],
        ticks_per_minute: int,
        seed: int,
        book_top: tuple[int, int] = DEFAULT_BOOK_TOP_STEPS,
    ) -> None:
        if ticks_per_minute < 4:
            raise ValueError(
                f"ticks_per_minute must be >= 4 to visit open, high, low and close, "
                f"was {ticks_per_minute}"
            )
        self._book_top = check_book_top(book_top)
        self._klines = list(klines)
        self._ticks_per_minute = ticks_per_minute
        self._rng = random.Random(seed)
        self._index = 0
        self._next_aggressor: Aggressor = "BUY"

    @property
    def exhausted(self) -> bool:
        """True once every kline has been emitted."""
        return self._index >= len(self._klines)

    @property
    def remaining(self) -> int:
        """Klines not yet emitted."""
        return len(self._klines) - self._index

    def minutes(self, n: int) -> Iterator[MinuteSample]:
        """Yield up to ``n`` minutes, stopping early when the klines run out."""
        for _ in range(n):
            if self.exhausted:
                return
            yield self.next_minute()

    def next_minute(self) -> MinuteSample:
        """Expand the next kline; raises :class:`ReplayExhausted` after the last one."""
        if self.exhausted:
            raise ReplayExhausted(f"all {len(self._klines)} klines replayed")
        kline = self._klines[self._index]
        self._index += 1
        rng = self._rng
        n = self._ticks_per_minute

        o, h, low, c = (
            round(x / PRICE_TICK) for x in (kline.open, kline.high, kline.low, kline.close)
        )
        if c > o:
            first, second = low, h
        elif c < o:
            first, second = h, low
        else:
            first, second = (low, h) if rng.random() < 0.5 else (h, low)
        path = _walk([o, first, second, c], n, low, h, rng)

        volume_steps = round(kline.volume / SIZE_STEP)
        base, remainder = divmod(volume_steps, n)
        ticks: list[TickSample] = []
        for i, (ts, trade) in enumerate(
            zip(tick_timestamps(kline.open_time_ns, n), path, strict=True)
        ):
            aggressor = self._next_aggressor
            self._next_aggressor = "SELL" if aggressor == "BUY" else "BUY"
            spread = rng.randint(1, 3)
            bid, ask = quote_around_trade(trade, spread, aggressor)
            if bid <= 0:
                bid, ask = trade, trade + spread
            size_steps = max(1, base + (remainder if i == n - 1 else 0))
            ticks.append(make_tick(rng, ts, bid, ask, trade, size_steps, aggressor, self._book_top))
        last = ticks[-1]
        close_ns = kline.open_time_ns + MINUTE_NS
        return MinuteSample(
            ts_ns=kline.open_time_ns,
            open=ticks_to_price(o),
            high=ticks_to_price(h),
            low=ticks_to_price(low),
            close=ticks_to_price(c),
            volume=steps_to_size(sum(round(t.trade_size / SIZE_STEP) for t in ticks)),
            regime=REPLAY_REGIME,
            ticks=tuple(ticks),
            funding_rate=REPLAY_FUNDING_RATE,
            next_funding_ns=next_funding_ns(close_ns),
            mark_price=ticks_to_price(round((last.bid + last.ask) / 2 / PRICE_TICK)),
        )


def _walk(waypoints: list[int], n: int, low: int, high: int, rng: random.Random) -> list[int]:
    """``n`` integer-tick prices through the four waypoints, jittered within [low, high].

    Waypoints sit at evenly spaced indices so each leg gets a share of the ticks;
    the waypoints themselves are exact, which is what makes the bar's extremes equal
    the tick extremes.
    """
    anchors = [round(k * (n - 1) / 3) for k in range(4)]
    path: list[int] = []
    for leg in range(3):
        start_i, end_i = anchors[leg], anchors[leg + 1]
        start_p, end_p = waypoints[leg], waypoints[leg + 1]
        span = end_i - start_i
        for i in range(start_i, end_i):
            frac = (i - start_i) / span
            price = start_p + (end_p - start_p) * frac
            if i != start_i:
                price += rng.uniform(-0.2, 0.2) * abs(end_p - start_p)
            path.append(min(high, max(low, round(price))))
    path.append(waypoints[3])
    return path

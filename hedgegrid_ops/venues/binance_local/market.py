"""The simulated market as the exchange sees it: a top of book, trade prints,
closed 1-minute klines, a mark price and funding, advanced to a simulated time.

The prices come from the same models paper mode uses (:class:`PriceProcess` or
:class:`ReplayProcess`, imported, not copied). This module is pure: no asyncio, no
I/O. The server asks :meth:`Market.advance` for everything that happened up to a
simulated instant and publishes it; the matching engine fills from the same ticks.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from itertools import islice

from hedgegrid_ops.venues.sim.process import (
    FUNDING_INTERVAL_NS,
    MINUTE_NS,
    MinuteSample,
    MinuteSource,
    TickSample,
    next_funding_ns,
)

NS_PER_MS = 1_000_000
# Kline intervals Binance accepts, in minutes (the exchange aggregates 1m klines).
INTERVAL_MINUTES: dict[str, int] = {
    "1m": 1,
    "3m": 3,
    "5m": 5,
    "15m": 15,
    "30m": 30,
    "1h": 60,
    "2h": 120,
    "4h": 240,
    "6h": 360,
    "8h": 480,
    "12h": 720,
    "1d": 1440,
}


@dataclass(frozen=True, slots=True)
class Quote:
    """Top of book after a tick (Decimal so the engine compares exact prices)."""

    bid: Decimal
    ask: Decimal
    bid_size: Decimal
    ask_size: Decimal


@dataclass(frozen=True, slots=True)
class TradePrint:
    """One market trade; ``agg_id`` is the aggTrade id Binance would assign."""

    ts_ns: int
    agg_id: int
    price: Decimal
    size: Decimal
    buyer_is_maker: bool


@dataclass(frozen=True, slots=True)
class TickEvent:
    """A quote change and the trade that printed against it."""

    ts_ns: int
    update_id: int
    quote: Quote
    trade: TradePrint


@dataclass(frozen=True, slots=True)
class KlineRow:
    """A closed 1-minute candle with the numbers Binance's kline arrays carry."""

    open_ms: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    quote_volume: Decimal
    trades: int
    taker_buy_volume: Decimal
    taker_buy_quote: Decimal
    first_trade_id: int
    last_trade_id: int
    span_ms: int = MINUTE_NS // NS_PER_MS

    @property
    def close_ms(self) -> int:
        return self.open_ms + self.span_ms - 1


@dataclass(frozen=True, slots=True)
class KlineClosed:
    """A minute closed: published once as a ``x: true`` kline."""

    ts_ns: int
    kline: KlineRow


@dataclass(frozen=True, slots=True)
class FundingDue:
    """A funding time passed: open positions pay or receive ``rate`` × notional at ``mark``."""

    ts_ns: int
    rate: Decimal
    mark: Decimal


MarketEvent = TickEvent | KlineClosed | FundingDue


def _d(value: float) -> Decimal:
    return Decimal(repr(value))


class Market:
    """One symbol's simulated market, consumed minute by minute from a source.

    ``advance(t)`` returns, in time order, every tick with timestamp ≤ t, a
    :class:`KlineClosed` when a minute's close time is reached and a
    :class:`FundingDue` when a funding time on the 8-hour grid is crossed. Once a
    replay runs out the market freezes at its last quote.
    """

    def __init__(self, source: MinuteSource, history_limit: int = 100_000) -> None:
        self._source = source
        self._minute: MinuteSample | None = None
        self._tick_index = 0
        self._agg_id = 0
        self._update_id = 0
        self._history: list[KlineRow] = []
        self._history_limit = history_limit
        self._quote: Quote | None = None
        self._last_trade: Decimal | None = None
        self._funding_rate = Decimal("0.0001")
        self._next_funding_ns: int | None = None
        self._now_ns: int | None = None
        self._minute_first_trade = 1
        self._load_next_minute()

    # -- state ---------------------------------------------------------------------------------

    @property
    def start_ns(self) -> int:
        """Open time of the first minute not yet fully consumed."""
        return self._minute.ts_ns if self._minute is not None else (self._now_ns or 0)

    @property
    def now_ns(self) -> int | None:
        """Simulated time reached by the last :meth:`advance`."""
        return self._now_ns

    @property
    def quote(self) -> Quote | None:
        return self._quote

    @property
    def last_price(self) -> Decimal | None:
        return self._last_trade

    @property
    def mark_price(self) -> Decimal | None:
        """Mid of the current quote, on the tick grid (the mark the exchange uses)."""
        q = self._quote
        if q is None:
            return None
        tick = Decimal("0.1")
        return ((q.bid + q.ask) / 2 / tick).to_integral_value() * tick

    @property
    def funding_rate(self) -> Decimal:
        return self._funding_rate

    @property
    def next_funding_ns(self) -> int:
        if self._next_funding_ns is None:
            return next_funding_ns(self.start_ns)
        return self._next_funding_ns

    @property
    def exhausted(self) -> bool:
        return self._minute is None

    def history(self) -> list[KlineRow]:
        """Closed 1-minute klines, oldest first."""
        return self._history

    def prepend_history(self, rows: list[KlineRow]) -> None:
        """Klines from before this market started (a restored exchange's past)."""
        first = self._history[0].open_ms if self._history else None
        older = [r for r in rows if first is None or r.open_ms < first]
        self._history[:0] = older

    # -- advancing -----------------------------------------------------------------------------

    def advance(self, now_ns: int, limit: int | None = None) -> list[MarketEvent]:
        """What happened up to and including simulated time ``now_ns`` (at most ``limit``
        events; the rest is returned by the next call)."""
        return list(islice(self._iter_until(now_ns), limit))

    def warm_up(self, until_ns: int) -> None:
        """Consume the market up to ``until_ns`` silently: klines go to history only.

        Whole minutes skip the per-tick objects (this runs before the exchange
        listens, so it is on the start-up path); ids, klines and the final quote are
        exactly what :meth:`advance` would have produced.
        """
        if self._next_funding_ns is None:
            self._next_funding_ns = next_funding_ns(self.start_ns)
        while (minute := self._minute) is not None and self._tick_index == 0:
            if minute.close_ns > until_ns or not minute.ticks:
                break
            count = len(minute.ticks)
            self._agg_id += count
            self._update_id += count
            while self._next_funding_ns < minute.close_ns:
                self._next_funding_ns += FUNDING_INTERVAL_NS
            last = minute.ticks[-1]
            self._quote = Quote(_d(last.bid), _d(last.ask), _d(last.bid_size), _d(last.ask_size))
            self._last_trade = _d(last.trade_price)
            self._tick_index = count
            self._close_minute(minute)
            self._load_next_minute()
        for _ in self._iter_until(until_ns):
            pass

    def next_event_ns(self) -> int | None:
        """Simulated time of the next event (for the pump's sleep), None if exhausted."""
        minute = self._minute
        if minute is None:
            return None
        candidates = [minute.close_ns, self.next_funding_ns]
        if self._tick_index < len(minute.ticks):
            candidates.append(minute.ticks[self._tick_index].ts_ns)
        return min(candidates)

    def _iter_until(self, now_ns: int) -> Iterator[MarketEvent]:
        if self._next_funding_ns is None:
            self._next_funding_ns = next_funding_ns(self.start_ns)
        while self._minute is not None:
            minute = self._minute
            if self._tick_index < len(minute.ticks):
                tick = minute.ticks[self._tick_index]
                if tick.ts_ns > now_ns:
                    break
                if self._next_funding_ns <= tick.ts_ns:
                    yield self._funding(self._next_funding_ns)
                self._tick_index += 1
                yield self._tick(tick)
                continue
            if minute.close_ns > now_ns:
                break
            if self._next_funding_ns < minute.close_ns:
                yield self._funding(self._next_funding_ns)
            # State moves on before the yield: a consumer that stops here (a limited
            # advance) must not see this minute close twice.
            closed = KlineClosed(minute.close_ns, self._close_minute(minute))
            self._load_next_minute()
            yield closed
        if self._now_ns is None or now_ns > self._now_ns:
            self._now_ns = now_ns
        while self._minute is not None and self._next_funding_ns <= now_ns:
            yield self._funding(self._next_funding_ns)

    def _funding(self, ts_ns: int) -> FundingDue:
        self._next_funding_ns = ts_ns + FUNDING_INTERVAL_NS
        mark = self.mark_price
        return FundingDue(ts_ns, self._funding_rate, mark if mark is not None else Decimal(0))

    def _tick(self, tick: TickSample) -> TickEvent:
        self._agg_id += 1
        self._update_id += 1
        price, size = _d(tick.trade_price), _d(tick.trade_size)
        quote = Quote(_d(tick.bid), _d(tick.ask), _d(tick.bid_size), _d(tick.ask_size))
        self._quote = quote
        self._last_trade = price
        return TickEvent(
            ts_ns=tick.ts_ns,
            update_id=self._update_id,
            quote=quote,
            trade=TradePrint(
                ts_ns=tick.ts_ns,
                agg_id=self._agg_id,
                price=price,
                size=size,
                buyer_is_maker=tick.aggressor == "SELL",
            ),
        )

    def _close_minute(self, minute: MinuteSample) -> KlineRow:
        quote_volume = taker_base = taker_quote = 0.0
        for t in minute.ticks:
            notional = t.trade_price * t.trade_size
            quote_volume += notional
            if t.aggressor == "BUY":
                taker_base += t.trade_size
                taker_quote += notional
        row = KlineRow(
            open_ms=minute.ts_ns // NS_PER_MS,
            open=_d(minute.open),
            high=_d(minute.high),
            low=_d(minute.low),
            close=_d(minute.close),
            volume=_d(minute.volume),
            quote_volume=_d(round(quote_volume, 5)),
            trades=len(minute.ticks),
            taker_buy_volume=_d(round(taker_base, 3)),
            taker_buy_quote=_d(round(taker_quote, 5)),
            first_trade_id=self._minute_first_trade,
            last_trade_id=self._agg_id,
        )
        self._history.append(row)
        if len(self._history) > self._history_limit:
            del self._history[: len(self._history) - self._history_limit]
        self._funding_rate = _d(minute.funding_rate)
        return row

    def _load_next_minute(self) -> None:
        self._tick_index = 0
        self._minute_first_trade = self._agg_id + 1
        self._minute = None if self._source.exhausted else self._source.next_minute()


def klines(
    history: list[KlineRow],
    interval: str,
    start_ms: int | None,
    end_ms: int | None,
    limit: int,
) -> list[KlineRow]:
    """Closed klines of ``interval`` whose open time lies in [start, end], oldest first.

    Like Binance: with only ``endTime`` the *latest* ``limit`` rows before it are
    returned, otherwise the first ``limit`` rows from ``startTime``. Intervals above
    one minute are aggregated from complete groups of 1-minute rows.
    """
    minutes = INTERVAL_MINUTES[interval]
    rows = history if minutes == 1 else _aggregate(history, minutes)
    selected = [
        r
        for r in rows
        if (start_ms is None or r.open_ms >= start_ms) and (end_ms is None or r.open_ms <= end_ms)
    ]
    if start_ms is None:
        return selected[-limit:]
    return selected[:limit]


def _aggregate(rows: list[KlineRow], minutes: int) -> list[KlineRow]:
    span_ms = minutes * MINUTE_NS // NS_PER_MS
    groups: dict[int, list[KlineRow]] = {}
    for row in rows:
        groups.setdefault(row.open_ms - row.open_ms % span_ms, []).append(row)
    out: list[KlineRow] = []
    for open_ms, group in groups.items():
        if len(group) < minutes:
            continue  # an incomplete interval has not closed yet
        out.append(
            KlineRow(
                open_ms=open_ms,
                open=group[0].open,
                high=max(r.high for r in group),
                low=min(r.low for r in group),
                close=group[-1].close,
                volume=sum((r.volume for r in group), Decimal(0)),
                quote_volume=sum((r.quote_volume for r in group), Decimal(0)),
                trades=sum(r.trades for r in group),
                taker_buy_volume=sum((r.taker_buy_volume for r in group), Decimal(0)),
                taker_buy_quote=sum((r.taker_buy_quote for r in group), Decimal(0)),
                first_trade_id=group[0].first_trade_id,
                last_trade_id=group[-1].last_trade_id,
                span_ms=span_ms,
            )
        )
    return out

"""Seeded synthetic BTCUSDT-perpetual market, one simulated minute at a time.

This module is deliberately free of Nautilus imports: the grid maths, the paper
feed and the backtest generator all consume the same plain-number samples, so the
market model can be unit tested in milliseconds and reasoned about without an engine.

Prices are carried internally as integer multiples of the tick (0.1 USDT) and sizes
as integer multiples of the lot step (0.001 BTC). Converting to float only at the
edge means every emitted price is an exact tick multiple, which is what the
sandbox matching engine and Binance's filters require.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal, Protocol

from hedgegrid_ops.grid.units import NS_PER_MINUTE

PRICE_TICK = 0.1
SIZE_STEP = 0.001
# Quoted top-of-book size in lots (0.2 to 8 BTC), as on a liquid BTCUSDT perpetual.
DEFAULT_BOOK_TOP_STEPS = (200, 8000)
MINUTE_NS = NS_PER_MINUTE  # the simulator's name for it (its callers import it from here)
FUNDING_INTERVAL_MINUTES = 480
FUNDING_INTERVAL_NS = FUNDING_INTERVAL_MINUTES * NS_PER_MINUTE

SIDEWAYS = "sideways"
TREND_UP = "trend_up"
TREND_DOWN = "trend_down"
BURST = "burst"
REGIMES: tuple[str, ...] = (SIDEWAYS, TREND_UP, TREND_DOWN, BURST)

Aggressor = Literal["BUY", "SELL"]


@dataclass(frozen=True, slots=True)
class TickSample:
    """One top-of-book update plus the trade that printed against it.

    The trade always hits the quoted side (a BUY lifts the ask, a SELL hits the bid),
    so a consumer that fills from trades and one that fills from quotes see the same
    prices.
    """

    ts_ns: int
    bid: float
    ask: float
    bid_size: float
    ask_size: float
    trade_price: float
    trade_size: float
    aggressor: Aggressor


@dataclass(frozen=True, slots=True)
class MinuteSample:
    """Everything the simulated venue publishes for one minute.

    ``ts_ns`` is the minute's open time (like a Binance kline ``open_time``); the bar
    closes at ``close_ns``. OHLC/volume are computed from the trade prints in
    ``ticks`` so a bar never disagrees with the ticks a strategy saw.
    """

    ts_ns: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    regime: str
    ticks: tuple[TickSample, ...]
    funding_rate: float
    next_funding_ns: int
    mark_price: float

    @property
    def close_ns(self) -> int:
        """Bar close time: the timestamp the 1-minute bar and mark/funding carry."""
        return self.ts_ns + MINUTE_NS


class MinuteSource(Protocol):
    """What the live feed and the backtest generator need from a market model."""

    @property
    def exhausted(self) -> bool: ...

    def next_minute(self) -> MinuteSample: ...


def ticks_to_price(ticks: int) -> float:
    """Integer ticks → float rounded so that ``p * 10`` is integral to float precision."""
    return round(ticks * PRICE_TICK, 1)


def steps_to_size(steps: int) -> float:
    """Integer lots → float BTC, rounded to the 0.001 step."""
    return round(steps * SIZE_STEP, 3)


def next_funding_ns(ts_ns: int) -> int:
    """Next 00/08/16 UTC funding time strictly after ``ts_ns``.

    The Unix epoch is midnight UTC, so the 8-hour grid is simply multiples of 8 h.
    """
    return (ts_ns // FUNDING_INTERVAL_NS + 1) * FUNDING_INTERVAL_NS


def quote_around_trade(
    trade_ticks: int, spread_ticks: int, aggressor: Aggressor
) -> tuple[int, int]:
    """Place bid/ask so the trade sits exactly on the side the aggressor hit."""
    if aggressor == "BUY":
        return trade_ticks - spread_ticks, trade_ticks
    return trade_ticks, trade_ticks + spread_ticks


def make_tick(
    rng: random.Random,
    ts_ns: int,
    bid: int,
    ask: int,
    trade: int,
    size_steps: int,
    aggressor: Aggressor,
    book_top: tuple[int, int] = DEFAULT_BOOK_TOP_STEPS,
) -> TickSample:
    """One tick from integer tick/step units, with a random resting size on each side.

    ``book_top`` bounds the quoted bid and ask sizes in lots; a different range
    draws the same number of random numbers, so prices do not change with it.
    """
    lo, hi = book_top
    return TickSample(
        ts_ns=ts_ns,
        bid=ticks_to_price(bid),
        ask=ticks_to_price(ask),
        bid_size=steps_to_size(rng.randint(lo, hi)),
        ask_size=steps_to_size(rng.randint(lo, hi)),
        trade_price=ticks_to_price(trade),
        trade_size=steps_to_size(size_steps),
        aggressor=aggressor,
    )


def check_book_top(book_top: tuple[int, int]) -> tuple[int, int]:
    """Validate a (min, max) quoted size range in lots."""
    lo, hi = book_top
    if not 1 <= lo <= hi:
        raise ValueError(f"book_top must satisfy 1 <= min <= max lots, was {book_top}")
    return (lo, hi)


def book_top_steps(min_btc: float, max_btc: float) -> tuple[int, int]:
    """A quoted size range in BTC as whole lots (at least one lot)."""
    return (max(1, round(min_btc / SIZE_STEP)), max(1, round(max_btc / SIZE_STEP)))


def tick_timestamps(open_ns: int, count: int) -> list[int]:
    """Spread ``count`` ticks strictly inside the minute.

    Keeping every tick after the open and before the close means a stable sort by
    time never interleaves a minute's ticks with the previous minute's bar.
    """
    return [open_ns + (i + 1) * MINUTE_NS // (count + 1) for i in range(count)]


@dataclass(frozen=True, slots=True)
class _RegimeParams:
    """Per-segment parameters, drawn once when a regime starts."""

    drift_bps: float  # expected log-return per minute, in basis points
    vol_bps: float  # per-minute volatility, in basis points
    spread_ticks: tuple[int, int]  # inclusive range of the quoted spread
    size_scale: float  # multiplies the typical trade size
    funding_target: float  # the rate the funding premium drifts towards


# Base transition weights of the regime chain (no self-transitions: a regime that
# "continues" is modelled by its duration instead). Trends mostly calm down into a
# range before reversing, bursts mostly resolve into a trend or a range.
_TRANSITIONS: dict[str, dict[str, float]] = {
    SIDEWAYS: {TREND_UP: 0.35, TREND_DOWN: 0.35, BURST: 0.30},
    TREND_UP: {SIDEWAYS: 0.45, TREND_DOWN: 0.20, BURST: 0.35},
    TREND_DOWN: {SIDEWAYS: 0.45, TREND_UP: 0.20, BURST: 0.35},
    BURST: {SIDEWAYS: 0.40, TREND_UP: 0.30, TREND_DOWN: 0.30},
}

# How strongly a regime that has not been seen for a while attracts the chain: its
# weight grows by exp(growth * hours absent). With the base matrix alone a 6-hour
# window misses a regime for ~20 % of seeds; with this pull every regime recurs
# within a few hours, which is what makes short paper sessions exercise the whole
# strategy while the order of regimes stays random.
_STALENESS_GROWTH_PER_HOUR = 2.0

_SIDEWAYS_REVERSION_PER_MINUTE = 0.08
_FUNDING_ADJUST_PER_MINUTE = 0.2
_FUNDING_NOISE = 0.00002
_FUNDING_CAP = 0.003


class PriceProcess:
    """Regime-switching random walk that emits a full minute of market data per call.

    Regimes and their behaviour per simulated minute:

    * ``sideways`` – mean-reverting around the price at which the range began,
      5–12 bps volatility, 1–2 tick spread, funding around +1 bp.
    * ``trend_up`` / ``trend_down`` – persistent drift of 1–3 bps per minute with
      8–14 bps volatility, funding +1…+5 bp / −1…−5 bp.
    * ``burst`` – 20–35 bps volatility with occasional 3-sigma jumps, wide 2–5 tick
      spread, larger prints, funding noisy around zero.

    The regime sequence is a seeded Markov chain whose state is the current regime
    and how long each other regime has been absent; durations are drawn uniformly
    from ``regime_minutes`` (bursts last a third of that). Everything is driven by a
    single ``random.Random(seed)``, so the same arguments always produce the same
    samples.
    """

    def __init__(
        self,
        seed: int,
        initial_price: float,
        start_ns: int,
        ticks_per_minute: int,
        regime_minutes: tuple[int, int] = (20, 90),
        book_top: tuple[int, int] = DEFAULT_BOOK_TOP_STEPS,
    ) -> None:
        if initial_price <= 1.0:
            raise ValueError(f"initial_price must be > 1.0, was {initial_price}")
        if ticks_per_minute < 1:
            raise ValueError(f"ticks_per_minute must be >= 1, was {ticks_per_minute}")
        lo, hi = regime_minutes
        if not 1 <= lo <= hi:
            raise ValueError(f"regime_minutes must satisfy 1 <= lo <= hi, was {regime_minutes}")
        if start_ns < 0:
            raise ValueError(f"start_ns must be >= 0, was {start_ns}")

        self._book_top = check_book_top(book_top)
        self._rng = random.Random(seed)
        self._ticks_per_minute = ticks_per_minute
        self._regime_minutes = (lo, hi)
        self._minute_index = 0
        self._open_ns = start_ns - start_ns % MINUTE_NS
        self._log_mid = math.log(initial_price)
        self._anchor = self._log_mid
        self._next_aggressor: Aggressor = "BUY" if self._rng.random() < 0.5 else "SELL"
        self._funding_rate = 0.0001
        # Pretend every regime was last seen an hour ago so the first switch is
        # driven by the base matrix rather than by an artificial "never seen" pull.
        self._last_seen: dict[str, int] = dict.fromkeys(REGIMES, -60)
        self._regime = self._rng.choice(REGIMES)
        self._regime_left = self._draw_duration(self._regime)
        self._params = self._draw_params(self._regime)

    @property
    def exhausted(self) -> bool:
        """A synthetic market never runs out; present for interface parity with replay."""
        return False

    @property
    def regime(self) -> str:
        """Regime that the next minute will be generated in."""
        return self._regime

    def minutes(self, n: int) -> Iterator[MinuteSample]:
        """Yield the next ``n`` minutes."""
        for _ in range(n):
            yield self.next_minute()

    def next_minute(self) -> MinuteSample:
        """Advance the market by one simulated minute."""
        if self._regime_left <= 0:
            self._switch_regime()
        regime = self._regime
        params = self._params
        rng = self._rng
        n = self._ticks_per_minute

        drift = params.drift_bps * 1e-4 / n
        vol = params.vol_bps * 1e-4 / math.sqrt(n)
        reversion = _SIDEWAYS_REVERSION_PER_MINUTE / n if regime == SIDEWAYS else 0.0

        ticks: list[TickSample] = []
        trade_ticks_path: list[int] = []
        volume_steps = 0
        for ts in tick_timestamps(self._open_ns, n):
            shock = rng.gauss(0.0, 1.0)
            if regime == BURST and rng.random() < 0.1:
                shock *= 3.0  # occasional jumps give bursts fat tails
            self._log_mid += drift + vol * shock - reversion * (self._log_mid - self._anchor)
            mid_ticks = math.exp(self._log_mid) / PRICE_TICK
            spread = rng.randint(*params.spread_ticks)
            aggressor = self._next_aggressor
            self._next_aggressor = "SELL" if aggressor == "BUY" else "BUY"
            if aggressor == "BUY":
                trade = round(mid_ticks + spread / 2)
            else:
                trade = round(mid_ticks - spread / 2)
            trade = max(trade, spread + 1)  # keep the bid strictly positive
            bid, ask = quote_around_trade(trade, spread, aggressor)
            size_steps = max(1, round(math.exp(rng.gauss(3.5, 0.9)) * params.size_scale))
            volume_steps += size_steps
            trade_ticks_path.append(trade)
            ticks.append(make_tick(rng, ts, bid, ask, trade, size_steps, aggressor, self._book_top))

        self._funding_rate += _FUNDING_ADJUST_PER_MINUTE * (
            params.funding_target - self._funding_rate
        ) + rng.gauss(0.0, _FUNDING_NOISE)
        self._funding_rate = max(-_FUNDING_CAP, min(_FUNDING_CAP, self._funding_rate))

        last = ticks[-1]
        mark_ticks = round((last.bid + last.ask) / 2 / PRICE_TICK)
        sample = MinuteSample(
            ts_ns=self._open_ns,
            open=ticks_to_price(trade_ticks_path[0]),
            high=ticks_to_price(max(trade_ticks_path)),
            low=ticks_to_price(min(trade_ticks_path)),
            close=ticks_to_price(trade_ticks_path[-1]),
            volume=steps_to_size(volume_steps),
            regime=regime,
            ticks=tuple(ticks),
            funding_rate=round(self._funding_rate, 8),
            next_funding_ns=next_funding_ns(self._open_ns + MINUTE_NS),
            mark_price=ticks_to_price(mark_ticks),
        )
        self._open_ns += MINUTE_NS
        self._minute_index += 1
        self._regime_left -= 1
        return sample

    def _switch_regime(self) -> None:
        current = self._regime
        self._last_seen[current] = self._minute_index
        candidates = _TRANSITIONS[current]
        weights = [
            base
            * math.exp(
                _STALENESS_GROWTH_PER_HOUR * (self._minute_index - self._last_seen[nxt]) / 60.0
            )
            for nxt, base in candidates.items()
        ]
        self._regime = self._rng.choices(list(candidates), weights=weights)[0]
        self._regime_left = self._draw_duration(self._regime)
        self._params = self._draw_params(self._regime)
        if self._regime == SIDEWAYS:
            self._anchor = self._log_mid

    def _draw_duration(self, regime: str) -> int:
        lo, hi = self._regime_minutes
        if regime == BURST:
            lo, hi = max(1, lo // 3), max(1, hi // 3)
        return self._rng.randint(lo, hi)

    def _draw_params(self, regime: str) -> _RegimeParams:
        rng = self._rng
        if regime == SIDEWAYS:
            return _RegimeParams(
                drift_bps=0.0,
                vol_bps=rng.uniform(5.0, 12.0),
                spread_ticks=(1, 2),
                size_scale=1.0,
                funding_target=rng.uniform(0.00005, 0.00015),
            )
        if regime in (TREND_UP, TREND_DOWN):
            sign = 1.0 if regime == TREND_UP else -1.0
            return _RegimeParams(
                drift_bps=sign * rng.uniform(1.0, 3.0),
                vol_bps=rng.uniform(8.0, 14.0),
                spread_ticks=(1, 3),
                size_scale=1.5,
                funding_target=sign * rng.uniform(0.0001, 0.0005),
            )
        return _RegimeParams(
            drift_bps=rng.choice((-1.0, 1.0)) * rng.uniform(0.0, 2.0),
            vol_bps=rng.uniform(20.0, 35.0),
            spread_ticks=(2, 5),
            size_scale=3.0,
            funding_target=rng.uniform(-0.0002, 0.0002),
        )

"""Trend regime from bars: EMA direction gated by Wilder's ADX, with hysteresis.

The regime decides which side of the grid is thinned, and every change of
regime re-places orders, so it must not flicker: a trend is entered at
``adx_trend_on`` but only left below the lower ``adx_trend_off`` (or when the
EMAs cross back).
"""

from __future__ import annotations

import math

from hedgegrid_ops.grid.types import Regime


class _Ema:
    """EMA seeded with the simple mean of the first ``period`` values.

    Seeding with the mean (rather than the first value) keeps a single odd
    first bar from biasing the slow EMA for hundreds of bars.
    """

    __slots__ = ("_alpha", "_count", "_period", "_sum", "value")

    def __init__(self, period: int) -> None:
        self._period = period
        self._alpha = 2.0 / (period + 1)
        self._count = 0
        self._sum = 0.0
        self.value: float | None = None

    def update(self, x: float) -> None:
        self._count += 1
        if self._count <= self._period:
            self._sum += x
            self.value = self._sum / self._count
        else:
            assert self.value is not None
            self.value += self._alpha * (x - self.value)


class _WilderAdx:
    """Wilder's ADX: smoothed TR and directional movement, then smoothed DX.

    The first smoothed TR/DM is the sum of ``period`` bar values (available on
    bar ``period + 1``) and the first ADX the mean of ``period`` DX values, so
    the first ADX appears on bar ``2 * period``.
    """

    __slots__ = (
        "_dx_count",
        "_dx_sum",
        "_minus_dm",
        "_period",
        "_plus_dm",
        "_prev",
        "_tr",
        "_tr_count",
        "adx",
        "minus_di",
        "plus_di",
    )

    def __init__(self, period: int) -> None:
        self._period = period
        self._prev: tuple[float, float, float] | None = None
        self._tr = 0.0
        self._plus_dm = 0.0
        self._minus_dm = 0.0
        self._tr_count = 0
        self._dx_sum = 0.0
        self._dx_count = 0
        self.plus_di: float | None = None
        self.minus_di: float | None = None
        self.adx: float | None = None

    def update(self, high: float, low: float, close: float) -> None:
        prev = self._prev
        self._prev = (high, low, close)
        if prev is None:
            return
        prev_high, prev_low, prev_close = prev
        tr = max(high - low, abs(high - prev_close), abs(low - prev_close))
        up = high - prev_high
        down = prev_low - low
        plus_dm = up if up > down and up > 0 else 0.0
        minus_dm = down if down > up and down > 0 else 0.0

        n = self._period
        self._tr_count += 1
        if self._tr_count <= n:
            self._tr += tr
            self._plus_dm += plus_dm
            self._minus_dm += minus_dm
            if self._tr_count < n:
                return
        else:
            self._tr += tr - self._tr / n
            self._plus_dm += plus_dm - self._plus_dm / n
            self._minus_dm += minus_dm - self._minus_dm / n

        if self._tr > 0:
            self.plus_di = 100.0 * self._plus_dm / self._tr
            self.minus_di = 100.0 * self._minus_dm / self._tr
        else:
            # No range at all: no direction either.
            self.plus_di = self.minus_di = 0.0
        di_sum = self.plus_di + self.minus_di
        dx = 100.0 * abs(self.plus_di - self.minus_di) / di_sum if di_sum > 0 else 0.0

        if self.adx is None:
            self._dx_sum += dx
            self._dx_count += 1
            if self._dx_count == n:
                self.adx = self._dx_sum / n
        else:
            self.adx = (self.adx * (n - 1) + dx) / n


def _check_period(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


class RegimeDetector:
    """Classifies each bar as SIDEWAYS, UP or DOWN.

    Stays SIDEWAYS until ``max(ema_slow, 2 * adx_period)`` bars have been seen,
    because a regime computed from half-initialised indicators would thin a
    side of the grid for no reason right after start-up.
    """

    def __init__(
        self,
        ema_fast: int,
        ema_slow: int,
        adx_period: int,
        adx_trend_on: float,
        adx_trend_off: float,
    ) -> None:
        _check_period("ema_fast", ema_fast)
        _check_period("ema_slow", ema_slow)
        _check_period("adx_period", adx_period)
        if ema_fast >= ema_slow:
            raise ValueError(f"ema_fast ({ema_fast}) must be shorter than ema_slow ({ema_slow})")
        if not (math.isfinite(adx_trend_on) and 0 < adx_trend_on <= 100):
            raise ValueError(f"adx_trend_on must be within (0, 100], got {adx_trend_on!r}")
        if not (math.isfinite(adx_trend_off) and 0 <= adx_trend_off <= adx_trend_on):
            raise ValueError(
                f"adx_trend_off must be within [0, adx_trend_on={adx_trend_on}] "
                f"for hysteresis, got {adx_trend_off!r}"
            )
        self._fast = _Ema(ema_fast)
        self._slow = _Ema(ema_slow)
        self._adx = _WilderAdx(adx_period)
        self._on = float(adx_trend_on)
        self._off = float(adx_trend_off)
        self._warmup_bars = max(ema_slow, 2 * adx_period)
        self._bars = 0
        self._regime = Regime.SIDEWAYS

    @property
    def regime(self) -> Regime:
        """Regime after the last bar (SIDEWAYS before warm-up)."""
        return self._regime

    @property
    def adx(self) -> float | None:
        """Latest ADX, or None until ``2 * adx_period`` bars have been seen."""
        return self._adx.adx

    @property
    def ema_fast_value(self) -> float | None:
        """Fast EMA (a running mean during its first period), None before any bar."""
        return self._fast.value

    @property
    def ema_slow_value(self) -> float | None:
        """Slow EMA (a running mean during its first period), None before any bar."""
        return self._slow.value

    @property
    def warmed_up(self) -> bool:
        """Whether enough bars have been seen for the regime to mean anything."""
        return self._bars >= self._warmup_bars and self._adx.adx is not None

    def update(self, high: float, low: float, close: float) -> Regime:
        """Feed one closed bar and return the regime after it."""
        if not all(math.isfinite(v) for v in (high, low, close)):
            raise ValueError(f"bar values must be finite, got {high=}, {low=}, {close=}")
        if high < low:
            raise ValueError(f"bar high {high} is below its low {low}")
        self._bars += 1
        self._fast.update(close)
        self._slow.update(close)
        self._adx.update(high, low, close)
        if self.warmed_up:
            self._regime = self._next_regime()
        return self._regime

    def _next_regime(self) -> Regime:
        adx = self._adx.adx
        fast = self._fast.value
        slow = self._slow.value
        assert adx is not None and fast is not None and slow is not None
        current = self._regime
        if current is Regime.UP:
            # Leaving goes through SIDEWAYS: a reversal must re-qualify on a later bar.
            return Regime.SIDEWAYS if adx < self._off or fast < slow else Regime.UP
        if current is Regime.DOWN:
            return Regime.SIDEWAYS if adx < self._off or fast > slow else Regime.DOWN
        if adx >= self._on:
            if fast > slow:
                return Regime.UP
            if fast < slow:
                return Regime.DOWN
        return Regime.SIDEWAYS

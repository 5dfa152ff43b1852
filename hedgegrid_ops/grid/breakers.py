"""Kill-switch breakers: pure decisions on whether the account is outside its risk limits.

The strategy feeds a ``RiskSample`` (what the account looks like now) and the
``Baselines`` (session-start and peak equity) to ``evaluate``; a non-empty answer
means trading must stop. Keeping this free of Nautilus and of any state makes the
rules testable as properties:

- a disabled limit (``None``) never trips;
- a breaker that trips at a limit also trips at every tighter limit;
- a measurement that is not a finite number (NaN, inf) trips its enabled breaker,
  because "cannot tell" must fail safe rather than keep trading;
- the peak equity never decreases, so the drawdown is never negative.

Fractions (drawdown, session loss) are shares of equity, 0.1 = 10 %.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum


class Breaker(StrEnum):
    """The breaker names, as they appear in reasons, /status and metric labels."""

    MAX_DRAWDOWN = "max_drawdown"
    MAX_SESSION_LOSS = "max_session_loss"
    MAX_POSITION_QTY = "max_position_qty"
    MAX_POSITION_NOTIONAL = "max_position_notional"
    MAX_MARGIN_RATIO = "max_margin_ratio"
    STALE_DATA = "stale_data"


@dataclass(frozen=True)
class RiskLimits:
    """Every limit is optional: ``None`` switches that breaker off."""

    max_drawdown_fraction: float | None = None
    max_session_loss_fraction: float | None = None
    max_position_qty: Decimal | None = None
    max_position_notional_usdt: float | None = None
    max_margin_ratio: float | None = None
    max_data_age_seconds: float | None = None


@dataclass(frozen=True)
class Baselines:
    """Equity when the session began (first real account state) and its highest value since."""

    session_start_equity: float
    peak_equity: float


@dataclass(frozen=True)
class RiskSample:
    """The account as of one evaluation."""

    equity: float
    long_qty: Decimal
    short_qty: Decimal
    long_notional: float
    short_notional: float
    margin_ratio: float
    data_age_seconds: float | None  # None: no market data has ever arrived


@dataclass(frozen=True)
class Trip:
    """One breaker outside its limit: the name, what was measured and the limit."""

    breaker: Breaker
    measured: float
    limit: float
    detail: str = ""

    @property
    def reason(self) -> str:
        where = f" ({self.detail})" if self.detail else ""
        return f"{self.breaker.value}: measured {self.measured:.6g} > limit {self.limit:.6g}{where}"


def _exceeds(measured: float, limit: float) -> bool:
    """True when ``measured`` is beyond ``limit`` or is not a finite number (fail safe)."""
    return not (math.isfinite(measured) and measured <= limit)


def start_baselines(equity: float) -> Baselines:
    """Baselines from the first real account state of a session."""
    if not (math.isfinite(equity) and equity > 0):
        raise ValueError(f"a session baseline needs a finite equity > 0, got {equity!r}")
    return Baselines(session_start_equity=equity, peak_equity=equity)


def update_peak(baselines: Baselines, equity: float) -> Baselines:
    """Raise the peak to ``equity`` when it is higher; a non-finite equity changes nothing."""
    if math.isfinite(equity) and equity > baselines.peak_equity:
        return Baselines(baselines.session_start_equity, equity)
    return baselines


def drawdown_fraction(baselines: Baselines, equity: float) -> float:
    """Share of the peak equity lost since the peak (NaN when it cannot be told)."""
    if not math.isfinite(equity) or baselines.peak_equity <= 0:
        return math.nan
    return max(0.0, (baselines.peak_equity - equity) / baselines.peak_equity)


def session_loss_fraction(baselines: Baselines, equity: float) -> float:
    """Share of the session-start equity lost (0 when in profit, NaN when unknown)."""
    if not math.isfinite(equity) or baselines.session_start_equity <= 0:
        return math.nan
    start = baselines.session_start_equity
    return max(0.0, (start - equity) / start)


def evaluate(limits: RiskLimits, baselines: Baselines, sample: RiskSample) -> tuple[Trip, ...]:
    """Every breaker outside its limit, most fundamental first (account, then legs, then data).

    ``baselines`` should already include ``sample.equity`` (``update_peak``), so a
    new high is never reported as a drawdown.
    """
    trips: list[Trip] = []
    if limits.max_drawdown_fraction is not None:
        dd = drawdown_fraction(baselines, sample.equity)
        if _exceeds(dd, limits.max_drawdown_fraction):
            detail = f"peak equity {baselines.peak_equity:.2f}, equity {sample.equity:.2f}"
            trips.append(Trip(Breaker.MAX_DRAWDOWN, dd, limits.max_drawdown_fraction, detail))
    if limits.max_session_loss_fraction is not None:
        loss = session_loss_fraction(baselines, sample.equity)
        if _exceeds(loss, limits.max_session_loss_fraction):
            detail = (
                f"session start equity {baselines.session_start_equity:.2f}, "
                f"equity {sample.equity:.2f}"
            )
            trips.append(
                Trip(Breaker.MAX_SESSION_LOSS, loss, limits.max_session_loss_fraction, detail)
            )
    if limits.max_margin_ratio is not None and _exceeds(
        sample.margin_ratio, limits.max_margin_ratio
    ):
        trips.append(Trip(Breaker.MAX_MARGIN_RATIO, sample.margin_ratio, limits.max_margin_ratio))
    if limits.max_position_qty is not None:
        for side, qty in (("long", sample.long_qty), ("short", sample.short_qty)):
            if qty > limits.max_position_qty:
                trips.append(
                    Trip(Breaker.MAX_POSITION_QTY, float(qty), float(limits.max_position_qty), side)
                )
    if limits.max_position_notional_usdt is not None:
        for side, notional in (("long", sample.long_notional), ("short", sample.short_notional)):
            if _exceeds(notional, limits.max_position_notional_usdt):
                trips.append(
                    Trip(
                        Breaker.MAX_POSITION_NOTIONAL,
                        notional,
                        limits.max_position_notional_usdt,
                        side,
                    )
                )
    stale = data_stale(limits, sample.data_age_seconds)
    if stale is not None:
        trips.append(stale)
    return tuple(trips)


def data_stale(limits: RiskLimits, data_age_seconds: float | None) -> Trip | None:
    """The stale-data breaker alone (the strategy checks it on a timer, when no data arrives).

    ``None`` age means no data has arrived yet: the caller measures from its start instead.
    """
    if limits.max_data_age_seconds is None or data_age_seconds is None:
        return None
    if _exceeds(data_age_seconds, limits.max_data_age_seconds):
        return Trip(Breaker.STALE_DATA, data_age_seconds, limits.max_data_age_seconds)
    return None


def data_fresh(limits: RiskLimits, data_age_seconds: float | None) -> bool:
    """Data is arriving again (used to resume after a stale-data halt when configured)."""
    return data_age_seconds is not None and data_stale(limits, data_age_seconds) is None

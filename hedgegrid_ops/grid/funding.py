"""Funding guard: shrink the side that pays funding just before settlement.

The output is deliberately coarse (a handful of discrete scales) because every
change of scale cancels and re-places orders; a continuous scale would make the
strategy churn on every funding-rate update.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

from hedgegrid_ops.grid.types import PositionSide
from hedgegrid_ops.grid.units import BPS_PER_UNIT, NS_PER_MINUTE


@dataclass(frozen=True)
class FundingDecision:
    """Scales for each side plus what the guard saw, for logs and metrics.

    ``paying_side`` is None outside the window or when the rate is zero;
    inside the window it names the paying side even when the rate is below the
    threshold (then both scales are 1.0), so the projected cost is still visible.
    """

    long_scale: float
    short_scale: float
    paying_side: PositionSide | None
    projected_cost_usdt: float
    in_window: bool


def projected_funding_cost(
    rate: float,
    long_notional: float,
    short_notional: float,
    hours: float,
    interval_hours: float,
) -> float:
    """Net funding over ``hours`` at ``rate`` per ``interval_hours`` (positive = we pay).

    With a positive rate longs pay shorts, so the hedge's short leg offsets the
    long leg and only the net notional costs money.
    """
    if not interval_hours > 0:
        raise ValueError(f"interval_hours must be > 0, got {interval_hours!r}")
    if not hours >= 0:
        raise ValueError(f"hours must be >= 0, got {hours!r}")
    return rate * (long_notional - short_notional) * hours / interval_hours


def _validate_steps(scale_steps: Sequence[float]) -> None:
    if not scale_steps:
        raise ValueError("scale_steps must not be empty")
    if any(not 0 <= s <= 1 for s in scale_steps):
        raise ValueError(f"every scale step must be within [0, 1], got {tuple(scale_steps)}")
    if any(a <= b for a, b in pairwise(scale_steps)):
        raise ValueError(f"scale_steps must be strictly decreasing, got {tuple(scale_steps)}")


def _step_index(ratio: float, count: int) -> int:
    """``min(count - 1, floor(log2(ratio)))`` for ratio > 1, computed exactly.

    ``frexp`` gives the binary exponent directly, so a ratio of exactly 4 is
    index 2 and one ulp below 4 is index 1, with no log rounding in between.
    """
    if math.isinf(ratio):
        return count - 1
    _, exponent = math.frexp(ratio)  # ratio = m * 2**exponent, 0.5 <= m < 1
    return min(count - 1, exponent - 1)


def funding_guard(
    rate: float,
    now_ns: int,
    next_funding_ns: int | None,
    long_notional: float,
    short_notional: float,
    window_minutes: float,
    threshold_bps: float,
    scale_steps: tuple[float, ...],
) -> FundingDecision:
    """Decide how far to shrink the paying side ahead of the next settlement.

    Within ``window_minutes`` before ``next_funding_ns`` and with
    ``|rate|`` above ``threshold_bps``, the paying side (LONG for a positive
    rate) gets ``scale_steps[k]`` with ``k = floor(log2(|rate| / threshold))``
    capped at the last step: each doubling of the rate goes one step further.
    """
    if not math.isfinite(rate):
        raise ValueError(f"rate must be finite, got {rate!r}")
    if not (math.isfinite(threshold_bps) and threshold_bps > 0):
        raise ValueError(f"threshold_bps must be > 0, got {threshold_bps!r}")
    if not (math.isfinite(window_minutes) and window_minutes >= 0):
        raise ValueError(f"window_minutes must be >= 0, got {window_minutes!r}")
    if long_notional < 0 or short_notional < 0:
        raise ValueError(
            f"notionals are absolute values, got long={long_notional!r} short={short_notional!r}"
        )
    _validate_steps(scale_steps)

    remaining_ns = None if next_funding_ns is None else next_funding_ns - now_ns
    if remaining_ns is None or remaining_ns <= 0 or remaining_ns > window_minutes * NS_PER_MINUTE:
        return FundingDecision(1.0, 1.0, None, 0.0, in_window=False)
    if rate == 0:
        return FundingDecision(1.0, 1.0, None, 0.0, in_window=True)

    paying = PositionSide.LONG if rate > 0 else PositionSide.SHORT
    paying_notional = long_notional if paying is PositionSide.LONG else short_notional
    cost = abs(rate) * paying_notional
    rate_bps = abs(rate) * BPS_PER_UNIT
    scale = 1.0
    if rate_bps > threshold_bps:
        scale = float(scale_steps[_step_index(rate_bps / threshold_bps, len(scale_steps))])
    if paying is PositionSide.LONG:
        return FundingDecision(scale, 1.0, paying, cost, in_window=True)
    return FundingDecision(1.0, scale, paying, cost, in_window=True)

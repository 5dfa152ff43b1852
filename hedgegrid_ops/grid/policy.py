"""Per-side level adjustments from market regime and funding.

Both only ever remove rungs from one side; they never add any, so stacking
them after the throttle cannot make the grid larger than configured.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import ROUND_FLOOR

from hedgegrid_ops.grid.quantize import to_decimal
from hedgegrid_ops.grid.types import GridParams, Regime


def _floor_scaled(levels: int, scale: float, name: str) -> int:
    if not 0 <= scale <= 1:
        raise ValueError(f"{name} must be within [0, 1], got {scale!r}")
    # Exact decimal product: 100 * 0.57 must be 57, not float's 56.999...
    return int((levels * to_decimal(scale)).to_integral_value(rounding=ROUND_FLOOR))


def apply_regime_policy(
    params: GridParams, regime: Regime, counter_trend_level_fraction: float
) -> GridParams:
    """Thin the side that trades against the trend.

    In an up-trend the SHORT rungs keep getting filled and then run against us,
    so they are cut to ``floor(levels_short * fraction)`` (possibly zero);
    a down-trend mirrors this on the LONG side.
    """
    if regime is Regime.UP:
        short = _floor_scaled(
            params.levels_short, counter_trend_level_fraction, "counter_trend_level_fraction"
        )
        return replace(params, levels_short=short)
    if regime is Regime.DOWN:
        long = _floor_scaled(
            params.levels_long, counter_trend_level_fraction, "counter_trend_level_fraction"
        )
        return replace(params, levels_long=long)
    # Validate even when unused so a bad config fails at start-up, not at the first trend.
    _floor_scaled(0, counter_trend_level_fraction, "counter_trend_level_fraction")
    return params


def scale_levels(params: GridParams, long_scale: float, short_scale: float) -> GridParams:
    """Shrink each side to ``floor(levels * scale)``; used with the funding guard's scales."""
    return replace(
        params,
        levels_long=_floor_scaled(params.levels_long, long_scale, "long_scale"),
        levels_short=_floor_scaled(params.levels_short, short_scale, "short_scale"),
    )

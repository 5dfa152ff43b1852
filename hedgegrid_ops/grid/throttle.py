"""Throttle: one operator knob between a passive and the configured grid.

The interpolation is done in exact decimal arithmetic (on the values as typed)
so the two guarantees operators rely on hold exactly, not just approximately:
lowering the throttle never adds rungs and never tightens the step.
"""

from __future__ import annotations

import math
from dataclasses import replace
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal

from hedgegrid_ops.grid.quantize import to_decimal
from hedgegrid_ops.grid.types import GridParams


def _passive_levels(levels: int, fraction: Decimal) -> int:
    if levels == 0:
        return 0  # a side switched off stays off however passive we get
    return max(1, int((levels * fraction).to_integral_value(rounding=ROUND_CEILING)))


def _interpolated_levels(full: int, passive: int, throttle: Decimal) -> int:
    # Round half up of a function monotone in throttle is itself monotone.
    value = passive + throttle * (full - passive)
    return int(value.to_integral_value(rounding=ROUND_HALF_UP))


def apply_throttle(
    params: GridParams,
    throttle: float,
    passive_level_fraction: float,
    passive_step_multiplier: float,
) -> GridParams:
    """Blend ``params`` (throttle 1) with its passive form (throttle 0).

    Passive means fewer levels (``ceil(levels * passive_level_fraction)``, at
    least one on an enabled side) and a wider step (``step_bps *
    passive_step_multiplier``). The fraction must be <= 1 and the multiplier
    >= 1, otherwise "passive" would be more aggressive and monotonicity breaks.
    """
    if not (isinstance(throttle, int | float) and math.isfinite(throttle) and 0 <= throttle <= 1):
        raise ValueError(f"throttle must be within [0, 1], got {throttle!r}")
    if not 0 <= passive_level_fraction <= 1:
        raise ValueError(
            f"passive_level_fraction must be within [0, 1], got {passive_level_fraction!r}"
        )
    if not (math.isfinite(passive_step_multiplier) and passive_step_multiplier >= 1):
        raise ValueError(
            f"passive_step_multiplier must be finite and >= 1, got {passive_step_multiplier!r}"
        )
    if throttle == 1:
        return params

    t = to_decimal(throttle)
    fraction = to_decimal(passive_level_fraction)
    full_step = to_decimal(params.step_bps)
    passive_step = full_step * to_decimal(passive_step_multiplier)
    step = passive_step + t * (full_step - passive_step)
    return replace(
        params,
        step_bps=float(step),
        levels_long=_interpolated_levels(
            params.levels_long, _passive_levels(params.levels_long, fraction), t
        ),
        levels_short=_interpolated_levels(
            params.levels_short, _passive_levels(params.levels_short, fraction), t
        ),
    )

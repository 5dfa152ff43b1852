"""Building the desired grid around a center price.

The ladder is recomputed from scratch on every recenter or parameter change and
then diffed against live orders, so this module only has to describe the
target, never how to get there.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from hedgegrid_ops.grid.quantize import is_placeable, quantize_price, quantize_qty, to_decimal
from hedgegrid_ops.grid.types import GridParams, InstrumentRules, Ladder, PositionSide, Rung
from hedgegrid_ops.grid.units import BPS


def _validate(center: Decimal, params: GridParams) -> None:
    if not center.is_finite() or center <= 0:
        raise ValueError(f"center must be a positive finite price, got {center}")
    if not params.step_bps > 0:
        raise ValueError(f"step_bps must be > 0, got {params.step_bps}")
    if params.levels_long < 0 or params.levels_short < 0:
        raise ValueError(
            f"levels must be >= 0, got long={params.levels_long} short={params.levels_short}"
        )
    if params.base_qty <= 0:
        raise ValueError(f"base_qty must be > 0, got {params.base_qty}")
    if not params.qty_scale > 0:
        raise ValueError(f"qty_scale must be > 0, got {params.qty_scale}")


def _side_rungs(
    side: PositionSide,
    levels: int,
    center: Decimal,
    step: Decimal,
    params: GridParams,
    rules: InstrumentRules,
) -> tuple[Rung, ...]:
    """Rungs of one side, dropping (never resizing) those the venue would refuse.

    Resizing a rung to meet min-notional would silently change the risk the
    operator configured; dropping it shows up as fewer active rungs instead.
    """
    is_long = side is PositionSide.LONG
    rounding = ROUND_FLOOR if is_long else ROUND_CEILING
    scale = to_decimal(params.qty_scale)
    rungs: list[Rung] = []
    previous_price: Decimal | None = None
    for level in range(levels):
        offset = step * (level + 1) / BPS
        raw = center * (1 - offset) if is_long else center * (1 + offset)
        price = quantize_price(raw, rules.tick_size, rounding)
        duplicate = previous_price is not None and price == previous_price
        previous_price = price
        if duplicate:
            # Two configured distances collapsed onto one tick: the later rung
            # would just double the exposure at a price that is already taken.
            continue
        qty = quantize_qty(params.base_qty * scale**level, rules.step_size)
        if is_placeable(price, qty, rules):
            rungs.append(Rung(side=side, level=level, price=price, qty=qty))
    return tuple(rungs)


def build_ladder(center: Decimal, params: GridParams, rules: InstrumentRules) -> Ladder:
    """Desired grid: LONG bids below ``center``, SHORT asks above it.

    Bids are rounded down and asks up, so rounding can only widen the grid,
    never cross the center. A rung keeps its configured ``level`` even when
    rungs before it are dropped, so order ids and exits stay stable.

    Because rungs are dropped rather than resized, the rung count is only
    bounded by the configured levels: with a tick that is coarse relative to the
    step, a wider step can keep more rungs apart than a narrow one.
    """
    _validate(center, params)
    step = to_decimal(params.step_bps)
    return Ladder(
        center=center,
        long=_side_rungs(PositionSide.LONG, params.levels_long, center, step, params, rules),
        short=_side_rungs(PositionSide.SHORT, params.levels_short, center, step, params, rules),
    )


def needs_recenter(center: Decimal, mid: Decimal, trigger_bps: float) -> bool:
    """Has the mid drifted far enough from the ladder center to rebuild the grid?

    Strictly greater than the trigger, so a mid sitting exactly on the trigger
    does not cause churn from one tick of noise around it.
    """
    if not center.is_finite() or center <= 0:
        raise ValueError(f"center must be a positive finite price, got {center}")
    if not trigger_bps >= 0:
        raise ValueError(f"trigger_bps must be >= 0, got {trigger_bps}")
    return abs(mid - center) * BPS / center > to_decimal(trigger_bps)

"""Reconciliation trusts venue positions only when two reads agree: what counts as agreeing."""

from __future__ import annotations

from decimal import Decimal

from nautilus_trader.core.uuid import UUID4
from nautilus_trader.execution.reports import PositionStatusReport
from nautilus_trader.model.enums import PositionSide
from nautilus_trader.model.identifiers import AccountId, InstrumentId, PositionId
from nautilus_trader.model.objects import Quantity

from hedgegrid_ops.venues.binance_live.execution import position_view

INSTRUMENT = InstrumentId.from_str("BTCUSDT-PERP.BINANCE")


def _report(leg: str, qty: str, entry: str | None = "60000") -> PositionStatusReport:
    side = PositionSide.FLAT if Decimal(qty) == 0 else PositionSide[leg]
    return PositionStatusReport(
        account_id=AccountId("BINANCE-001"),
        instrument_id=INSTRUMENT,
        position_side=side,
        quantity=Quantity.from_str(qty),
        report_id=UUID4(),
        ts_last=0,
        ts_init=0,
        venue_position_id=PositionId(f"{INSTRUMENT}-{leg}"),
        avg_px_open=Decimal(entry) if entry is not None else None,
    )


def test_same_legs_agree_in_any_order() -> None:
    a = [_report("LONG", "0.010"), _report("SHORT", "0.004", "61000")]
    assert position_view(a) == position_view(list(reversed(a)))


def test_a_fill_in_between_changes_the_view() -> None:
    assert position_view([_report("LONG", "0.010")]) != position_view([_report("LONG", "0.008")])


def test_fills_that_cancel_out_in_quantity_still_move_the_entry() -> None:
    # bought 0.002 and sold 0.002 between the reads: same quantity, new average entry
    before = [_report("LONG", "0.010", "60000")]
    after = [_report("LONG", "0.010", "60010")]
    assert position_view(before) != position_view(after)


def test_a_flat_leg_equals_a_missing_one() -> None:
    # positionRisk leaves flat legs out; a flat report must not count as a change
    assert position_view([_report("LONG", "0.010"), _report("SHORT", "0")]) == position_view(
        [_report("LONG", "0.010")]
    )


def test_a_leg_that_went_flat_is_a_change() -> None:
    assert position_view([_report("LONG", "0.010")]) != position_view([])


def test_legs_are_told_apart() -> None:
    long_only = position_view([_report("LONG", "0.010")])
    short_only = position_view([_report("SHORT", "0.010")])
    assert long_only != short_only
    assert set(long_only) == {("BTCUSDT-PERP.BINANCE", "BTCUSDT-PERP.BINANCE-LONG")}

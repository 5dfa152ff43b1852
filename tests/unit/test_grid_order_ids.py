"""Client order ids: exact format, strict parsing, round trip."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hedgegrid_ops.grid.order_ids import (
    ParsedOrderId,
    format_client_order_id,
    parse_client_order_id,
)
from hedgegrid_ops.grid.types import OrderRole, PositionSide

LONG, SHORT = PositionSide.LONG, PositionSide.SHORT


@pytest.mark.parametrize(
    ("side", "role", "level", "seq", "expected"),
    [
        (LONG, OrderRole.GRID, 3, 17, "HG1-LONG-03-17"),
        (SHORT, OrderRole.GRID, 0, 1, "HG1-SHORT-00-1"),
        (LONG, OrderRole.TAKE_PROFIT, 3, 18, "HG1-LONG-TP03-18"),
        (SHORT, OrderRole.STOP_LOSS, 12, 9, "HG1-SHORT-SL12-9"),
        (LONG, OrderRole.FLATTEN, 0, 120, "HG1-LONG-FL00-120"),
        (SHORT, OrderRole.TAKE_PROFIT, 99, 4, "HG1-SHORT-TP99-4"),
    ],
)
def test_format_and_parse(
    side: PositionSide, role: OrderRole, level: int, seq: int, expected: str
) -> None:
    assert format_client_order_id(side, role, level, seq) == expected
    assert parse_client_order_id(expected) == ParsedOrderId(side, role, level, seq)


@pytest.mark.parametrize(
    ("level", "seq"), [(-1, 1), (100, 1), (0, 0), (0, -3), (True, 1), (1, 10**30)]
)
def test_format_rejects(level: int, seq: int) -> None:
    with pytest.raises(ValueError):
        format_client_order_id(LONG, OrderRole.GRID, level, seq)


def test_longest_id_fits() -> None:
    # "HG1-SHORT-TP99-" is 15 characters, leaving 21 digits for seq.
    value = format_client_order_id(SHORT, OrderRole.TAKE_PROFIT, 99, 10**21 - 1)
    assert len(value) == 36
    with pytest.raises(ValueError):
        format_client_order_id(SHORT, OrderRole.TAKE_PROFIT, 99, 10**21)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "O-20240101-000-001-1",
        "HG1-LONG-3-1",
        "HG1-LONG-003-1",
        "HG1-LONG-03-0",
        "HG1-LONG-03-01",
        "HG1-LONG-03-",
        "HG1-long-03-1",
        "HG2-LONG-03-1",
        "HG1-LONG-XX03-1",
        "HG1-BOTH-03-1",
        "HG1-LONG-03-1\n",
        " HG1-LONG-03-1",
        "HG1-LONG-\u0660\u0663-1",
        "HG1-LONG-TP03-1-extra",
        "HG1-SHORT-TP99-" + "1" * 22,
    ],
)
def test_parse_rejects_foreign_ids(value: str) -> None:
    assert parse_client_order_id(value) is None


@given(
    st.sampled_from(list(PositionSide)),
    st.sampled_from(list(OrderRole)),
    st.integers(0, 99),
    st.integers(1, 10**21 - 1),
)
def test_round_trip(side: PositionSide, role: OrderRole, level: int, seq: int) -> None:
    value = format_client_order_id(side, role, level, seq)
    assert len(value) <= 36
    assert parse_client_order_id(value) == ParsedOrderId(side, role, level, seq)


@given(st.text(alphabet="HG1-LONGSHRTPLF0123456789", max_size=40))
def test_parse_accepts_only_what_format_produces(value: str) -> None:
    parsed = parse_client_order_id(value)
    if parsed is not None:
        assert format_client_order_id(parsed.side, parsed.role, parsed.level, parsed.seq) == value

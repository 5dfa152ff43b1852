"""Exit prices and keeping exit quantity in line with the position."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hedgegrid_ops.grid.exits import (
    entry_order_side,
    exit_order_side,
    exit_shortfall,
    exits_to_trim,
    stop_loss_price,
    take_profit_price,
)
from hedgegrid_ops.grid.types import PositionSide

D = Decimal
LONG, SHORT = PositionSide.LONG, PositionSide.SHORT
TICK = D("0.01")


def test_take_profit_rounds_away_from_entry() -> None:
    # 100.03 * 1.002 = 100.23006 -> up to 100.24
    assert take_profit_price(LONG, D("100.03"), 10.0, 2, TICK) == D("100.24")
    # 100.03 * 0.998 = 99.82994 -> down to 99.82
    assert take_profit_price(SHORT, D("100.03"), 10.0, 2, TICK) == D("99.82")


def test_stop_loss_rounds_away_from_entry() -> None:
    # 100.03 * 0.997 = 99.72991 -> down to 99.72
    assert stop_loss_price(LONG, D("100.03"), 10.0, 3, TICK) == D("99.72")
    # 100.03 * 1.003 = 100.33009 -> up to 100.34
    assert stop_loss_price(SHORT, D("100.03"), 10.0, 3, TICK) == D("100.34")


def test_exact_targets_are_kept() -> None:
    # 30000 * 1.0025 = 30075.0 exactly on the tick.
    assert take_profit_price(LONG, D(30000), 25.0, 1, D("0.1")) == D("30075.0")


@pytest.mark.parametrize(
    "call",
    [
        lambda: take_profit_price(LONG, D(100), 10.0, 0, TICK),
        lambda: take_profit_price(LONG, D(0), 10.0, 1, TICK),
        lambda: stop_loss_price(SHORT, D(100), -1.0, 1, TICK),
        lambda: stop_loss_price(LONG, D(100), 5000.0, 2, TICK),  # would be at 0
        lambda: take_profit_price(SHORT, D(100), 5000.0, 3, TICK),  # would be below 0
    ],
)
def test_exit_prices_validate(call: Callable[[], Decimal]) -> None:
    with pytest.raises(ValueError):
        call()


def test_order_sides() -> None:
    assert (exit_order_side(LONG), exit_order_side(SHORT)) == ("SELL", "BUY")
    assert (entry_order_side(LONG), entry_order_side(SHORT)) == ("BUY", "SELL")


def test_exit_shortfall() -> None:
    assert exit_shortfall(D("1.5"), D("1.2")) == D("0.3")
    assert exit_shortfall(D(1), D(2)) == D(0)
    assert exit_shortfall(D(1), D(1)) == D(0)


def test_trim_nothing_when_covered() -> None:
    assert exits_to_trim(D(10), [("a", D(6)), ("b", D(4))]) == ()
    assert exits_to_trim(D(10), []) == ()


def test_trim_newest_first() -> None:
    exits = [("a", D(5)), ("b", D(3)), ("c", D(3)), ("d", D(3))]
    # total 14 > 10: cancel d (11), cancel c (8 <= 10).
    assert exits_to_trim(D(10), exits) == ("d", "c")


def test_trim_is_minimal() -> None:
    exits = [("a", D(6)), ("b", D(5)), ("c", D(1))]
    # Cancelling c then b reaches 6, but c fits back (7 <= 10): only b must go.
    assert exits_to_trim(D(10), exits) == ("b",)


def test_flat_position_cancels_everything() -> None:
    assert exits_to_trim(D(0), [("a", D(1)), ("b", D(2))]) == ("b", "a")


quantities = st.decimals(min_value=D("0.001"), max_value=D(50), places=3)


@given(
    st.decimals(min_value=D(0), max_value=D(100), places=3),
    st.lists(quantities, max_size=12),
)
def test_trim_leaves_covered_and_minimal(position: Decimal, qtys: list[Decimal]) -> None:
    exits = [(f"id{i}", q) for i, q in enumerate(qtys)]
    cancelled = exits_to_trim(position, exits)
    assert len(set(cancelled)) == len(cancelled)
    by_id = dict(exits)
    remaining = sum((q for i, q in exits if i not in cancelled), D(0))
    assert remaining <= position
    # Minimal: keeping any one cancelled order would exceed the position again.
    for order_id in cancelled:
        assert remaining + by_id[order_id] > position
    if sum(qtys, D(0)) <= position:
        assert cancelled == ()
    elif cancelled:
        # Newest first: the newest order is always the first considered.
        assert cancelled == tuple(sorted(cancelled, key=lambda i: -int(i[2:])))

"""Order diff: hand examples plus convergence of repeated diff/apply."""

from __future__ import annotations

import itertools
import random
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hedgegrid_ops.grid.diff import LiveOrder, OrderDiff, diff_ladder
from hedgegrid_ops.grid.ladder import build_ladder
from hedgegrid_ops.grid.types import GridParams, InstrumentRules, PositionSide, Rung

D = Decimal
LONG, SHORT = PositionSide.LONG, PositionSide.SHORT


def rung(side: PositionSide, level: int, price: str, qty: str = "1") -> Rung:
    return Rung(side, level, D(price), D(qty))


def live(
    oid: str, side: PositionSide, level: int, price: str, qty: str = "1", pending: bool = False
) -> LiveOrder:
    return LiveOrder(oid, side, level, D(price), D(qty), pending)


def as_live(rungs: tuple[Rung, ...]) -> list[LiveOrder]:
    return [
        LiveOrder(f"id-{r.side}-{r.level}", r.side, r.level, r.price, r.qty, False) for r in rungs
    ]


def test_ladder_against_itself_is_empty() -> None:
    rules = InstrumentRules(D("0.1"), D("0.001"), D("0.001"), D(5))
    ladder = build_ladder(D(30000), GridParams(25.0, 5, 5, D("0.001"), 1.3), rules)
    assert ladder.rungs()
    diff = diff_ladder(ladder.rungs(), as_live(ladder.rungs()))
    assert diff == OrderDiff(cancel=(), place=())
    assert diff.is_empty()


def test_empty_live_places_everything_sorted() -> None:
    desired = [
        rung(SHORT, 1, "102"),
        rung(LONG, 1, "98"),
        rung(SHORT, 0, "101"),
        rung(LONG, 0, "99"),
    ]
    diff = diff_ladder(desired, [])
    assert diff.cancel == ()
    assert [(r.side, r.level) for r in diff.place] == [(LONG, 0), (LONG, 1), (SHORT, 0), (SHORT, 1)]


def test_changed_price_or_qty_replaces() -> None:
    desired = [rung(LONG, 0, "99"), rung(LONG, 1, "98", "2")]
    orders = [live("a", LONG, 0, "99.5"), live("b", LONG, 1, "98", "1")]
    diff = diff_ladder(desired, orders)
    assert diff.cancel == ("a", "b")
    assert diff.place == tuple(desired)


def test_duplicates_in_a_slot_keep_the_oldest_match() -> None:
    desired = [rung(LONG, 0, "99")]
    orders = [live("old", LONG, 0, "99"), live("new", LONG, 0, "99"), live("odd", LONG, 0, "97")]
    diff = diff_ladder(desired, orders)
    assert diff.cancel == ("new", "odd")
    assert diff.place == ()


def test_undesired_slots_are_cancelled() -> None:
    orders = [live("x", SHORT, 4, "110"), live("y", LONG, 2, "90")]
    diff = diff_ladder([], orders)
    assert diff.cancel == ("y", "x")  # LONG before SHORT
    assert diff.place == ()


def test_pending_cancel_blocks_placement_and_is_not_cancelled_again() -> None:
    desired = [rung(LONG, 0, "99"), rung(SHORT, 0, "101")]
    orders = [live("p", LONG, 0, "99.5", pending=True), live("q", SHORT, 3, "105", pending=True)]
    diff = diff_ladder(desired, orders)
    assert diff.cancel == ()
    assert diff.place == (desired[1],)


def test_pending_cancel_next_to_a_matching_order_keeps_it() -> None:
    desired = [rung(LONG, 0, "99")]
    orders = [live("p", LONG, 0, "98", pending=True), live("k", LONG, 0, "99")]
    assert diff_ladder(desired, orders).is_empty()


def test_numeric_equality_of_decimals() -> None:
    # 99.0 and 99.00 are the same price; no churn from representation.
    assert diff_ladder([rung(LONG, 0, "99.0")], [live("a", LONG, 0, "99.00")]).is_empty()


def test_duplicate_desired_slot_rejected() -> None:
    with pytest.raises(ValueError):
        diff_ladder([rung(LONG, 0, "99"), rung(LONG, 0, "98")], [])


def test_output_independent_of_slot_order() -> None:
    orders = [
        live(f"o{i}", side, i, str(100 + i))
        for i, side in zip(range(8), itertools.cycle([LONG, SHORT]), strict=False)
    ]
    desired = [
        rung(LONG, 0, "100"),
        rung(SHORT, 1, "999"),
        rung(LONG, 6, "106"),
        rung(SHORT, 9, "1"),
    ]
    expected = diff_ladder(desired, orders)
    rng = random.Random(3)
    for _ in range(10):
        shuffled_orders = orders[:]
        shuffled_desired = desired[:]
        rng.shuffle(shuffled_orders)
        rng.shuffle(shuffled_desired)
        assert diff_ladder(shuffled_desired, shuffled_orders) == expected


# --- convergence -------------------------------------------------------------------------

SIDES = st.sampled_from([LONG, SHORT])
PRICES = st.sampled_from(["97", "98", "99", "101"])
QTYS = st.sampled_from(["1", "2"])


@st.composite
def desired_rungs(draw: st.DrawFn) -> list[Rung]:
    slots = draw(st.sets(st.tuples(SIDES, st.integers(0, 5)), max_size=8))
    return [rung(side, level, draw(PRICES), draw(QTYS)) for side, level in sorted(slots)]


@st.composite
def live_orders(draw: st.DrawFn) -> list[LiveOrder]:
    n = draw(st.integers(0, 12))
    return [
        live(
            f"L{i}",
            draw(SIDES),
            draw(st.integers(0, 5)),
            draw(PRICES),
            draw(QTYS),
            draw(st.booleans()),
        )
        for i in range(n)
    ]


def apply(
    diff: OrderDiff, orders: list[LiveOrder], counter: itertools.count[int]
) -> list[LiveOrder]:
    """Send the diff: cancels become pending, places become new live orders."""
    cancel = set(diff.cancel)
    out = [
        LiveOrder(o.client_order_id, o.side, o.level, o.price, o.qty, True)
        if o.client_order_id in cancel
        else o
        for o in orders
    ]
    out += [
        LiveOrder(f"N{next(counter)}", r.side, r.level, r.price, r.qty, False) for r in diff.place
    ]
    return out


def venue_confirms_cancels(orders: list[LiveOrder]) -> list[LiveOrder]:
    return [o for o in orders if not o.pending_cancel]


def active_per_slot(orders: list[LiveOrder]) -> dict[tuple[PositionSide, int], int]:
    counts: dict[tuple[PositionSide, int], int] = {}
    for o in orders:
        if not o.pending_cancel:
            counts[(o.side, o.level)] = counts.get((o.side, o.level), 0) + 1
    return counts


@settings(max_examples=300)
@given(desired_rungs(), live_orders())
def test_diff_apply_converges(desired: list[Rung], orders: list[LiveOrder]) -> None:
    counter = itertools.count()
    state = orders
    for _ in range(3):
        diff = diff_ladder(desired, state)
        pending_ids = {o.client_order_id for o in state if o.pending_cancel}
        assert not pending_ids & set(diff.cancel), "pending cancels are never re-sent"
        state = apply(diff, state, counter)
        # Placing never puts a second working order next to a kept one.
        assert all(n <= 1 for n in active_per_slot(state).values())
        state = venue_confirms_cancels(state)
    assert diff_ladder(desired, state).is_empty()
    assert sorted((o.side, o.level, o.price, o.qty) for o in state) == sorted(
        (r.side, r.level, r.price, r.qty) for r in desired
    )


@given(desired_rungs())
def test_self_diff_is_empty(desired: list[Rung]) -> None:
    assert diff_ladder(desired, as_live(tuple(desired))).is_empty()

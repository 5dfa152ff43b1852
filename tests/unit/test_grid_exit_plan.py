"""Exit plan: one leg's exits of one role brought to its position, decided without Nautilus."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from hedgegrid_ops.grid.exits import ExitOrder, ExitPlan, plan_exits
from hedgegrid_ops.grid.types import InstrumentRules

D = Decimal
LOT = D("0.001")
RULES = InstrumentRules(tick_size=D("0.1"), step_size=LOT, min_qty=D("0.002"), min_notional=D(5))
PRICE = D(60000)


def tp(cid: str, qty: str, *, leaves: str | None = None, cancelling: bool = False) -> ExitOrder:
    return ExitOrder(cid, D(qty), D(leaves or qty), pending_cancel=cancelling, busy=cancelling)


def test_covered_leg_needs_nothing() -> None:
    assert plan_exits(D("0.004"), [tp("a", "0.004")], PRICE, RULES) == ExitPlan(covered=True)


def test_excess_is_trimmed_newest_first() -> None:
    plan = plan_exits(D("0.004"), [tp("a", "0.004"), tp("b", "0.002")], PRICE, RULES)
    assert plan == ExitPlan(cancel=("b",))


def test_a_shortfall_gets_a_new_exit() -> None:
    assert plan_exits(D("0.006"), [tp("a", "0.002")], PRICE, RULES).place_qty == D("0.004")


def test_nothing_is_added_while_an_exit_is_being_cancelled() -> None:
    exits = [tp("a", "0.002", cancelling=True)]
    assert plan_exits(D("0.006"), exits, PRICE, RULES) == ExitPlan()


def test_a_sliver_grows_the_newest_exit_or_is_reported() -> None:
    grown = plan_exits(D("0.005"), [tp("a", "0.002"), tp("b", "0.002")], PRICE, RULES)
    assert grown == ExitPlan(enlarge=("b", D("0.003")))
    partly_filled = [tp("a", "0.004", leaves="0.003")]
    assert plan_exits(D("0.004"), partly_filled, PRICE, RULES).enlarge == ("a", D("0.005"))
    assert plan_exits(D("0.001"), [], PRICE, RULES) == ExitPlan(uncovered=D("0.001"))


def test_a_flat_leg_has_its_exits_cancelled() -> None:
    assert plan_exits(D(0), [tp("a", "0.002")], None, RULES) == ExitPlan(cancel=("a",))
    assert plan_exits(D(0), [], None, RULES) == ExitPlan(covered=True)


exit_orders = st.lists(
    st.builds(
        lambda i, q, filled, cancelling, amending: ExitOrder(
            f"e{i}", q * LOT, (q - min(filled, q - 1)) * LOT, cancelling, cancelling or amending
        ),
        st.integers(0, 10_000),
        st.integers(1, 8),
        st.integers(0, 7),
        st.booleans(),
        st.booleans(),
    ),
    max_size=6,
    unique_by=lambda e: e.client_order_id,
)


@settings(deadline=None)
@given(position_lots=st.integers(0, 30), exits=exit_orders)
def test_plan_properties(position_lots: int, exits: list[ExitOrder]) -> None:
    position = position_lots * LOT
    plan = plan_exits(position, exits, PRICE if position else None, RULES)
    protecting = [e for e in exits if not e.pending_cancel]
    protection = sum((e.leaves for e in protecting), D(0))
    exposure = sum((e.leaves for e in exits), D(0))
    actions = [bool(plan.cancel), plan.place_qty is not None, plan.enlarge is not None]
    assert sum(actions) <= 1
    if plan.cancel:
        # Only protecting exits are cancelled, and afterwards protection fits the position.
        assert set(plan.cancel) <= {e.client_order_id for e in protecting}
        kept = sum((e.leaves for e in protecting if e.client_order_id not in plan.cancel), D(0))
        assert kept <= position < protection
    if plan.place_qty is not None or plan.enlarge is not None:
        # Something is added only when nothing is in flight, and exactly up to the position.
        assert not any(e.busy for e in exits)
        added = plan.place_qty if plan.place_qty is not None else position - protection
        assert exposure + added == position
    if plan.enlarge is not None:
        cid, qty = plan.enlarge
        newest = protecting[-1]
        assert cid == newest.client_order_id and qty == newest.quantity + position - protection
    busy = any(e.busy for e in exits)
    assert plan.covered is (protection >= position and not plan.cancel and not busy)
    if plan.uncovered:
        assert not protecting and plan.uncovered == position < RULES.min_qty

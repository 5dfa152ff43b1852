"""Flatten plan: hand examples, properties, and a venue that fills and cancels in any order."""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from hedgegrid_ops.grid.flatten import (
    CLOSE_PATIENCE_BARS,
    MAX_CLOSE_FAILURES,
    Close,
    FlattenPlan,
    LegOrder,
    plan_flatten,
    reducing_in_flight,
)
from hedgegrid_ops.grid.types import InstrumentRules

D = Decimal
LOT = D("0.001")
RULES = InstrumentRules(tick_size=D("0.1"), step_size=LOT, min_qty=LOT, min_notional=D(5))
PRICE = D(60000)


def tp(cid: str, qty: str, *, pending: bool = False, buy: bool = False) -> LegOrder:
    return LegOrder(cid, buy=buy, leaves=D(qty), is_close=False, pending_cancel=pending)


def close(cid: str, qty: str, *, sent_bar: int = 0, buy: bool = False) -> LegOrder:
    return LegOrder(
        cid, buy=buy, leaves=D(qty), is_close=True, pending_cancel=False, sent_bar=sent_bar
    )


def plan(held: str, orders: list[LegOrder], **kw: object) -> FlattenPlan:
    args: dict[str, object] = {"close_failures": 0, "bar": 0, "reference": PRICE, "rules": RULES}
    args.update(kw)
    return plan_flatten(D(held), orders, **args)  # type: ignore[arg-type]


# ---------------------------------------------------------------- examples


def test_a_take_profit_being_cancelled_holds_the_close_back() -> None:
    """The storm's race: the close waits for what the take profit may still sell."""
    p = plan("0.002", [tp("tp", "0.002", pending=True)])
    assert p == FlattenPlan()  # nothing to cancel again, nothing to close yet


def test_the_close_takes_only_what_exits_in_flight_cannot() -> None:
    p = plan("0.005", [tp("tp1", "0.002", pending=True), tp("tp2", "0.001")])
    assert p.cancel == ("tp2",)
    assert p.close == Close(buy=False, qty=D("0.002"))


def test_a_refused_close_is_not_resent_before_the_next_bar() -> None:
    """A -2022 refusal means the venue knows of a fill we do not yet: wait for it."""
    assert plan("0.002", [], close_failures=1, bar=7, failed_bar=7).close is None
    assert plan("0.002", [tp("tp", "0.001")], close_failures=1, bar=7, failed_bar=7).cancel == (
        "tp",
    )
    assert plan("0.002", [], close_failures=1, bar=8, failed_bar=7).close == Close(
        buy=False, qty=D("0.002")
    )


def test_once_the_cancel_is_acknowledged_the_whole_leg_is_closed() -> None:
    assert plan("0.002", []).close == Close(buy=False, qty=D("0.002"))


def test_a_short_leg_is_closed_by_buying_and_entries_do_not_count() -> None:
    entries = [tp("grid", "0.003", pending=True, buy=False)]  # SELL entries grow a short
    p = plan("-0.004", entries)
    assert p.close == Close(buy=True, qty=D("0.004"))


def test_a_flipped_leg_is_closed_in_its_actual_direction() -> None:
    # A LONG leg that holds -0.002: its BUY entry (cancel in flight) would reduce it.
    p = plan("-0.002", [tp("entry", "0.001", pending=True, buy=True)])
    assert p.close == Close(buy=True, qty=D("0.001"))


def test_one_close_at_a_time_and_a_stuck_one_is_cancelled() -> None:
    working = close("c1", "0.001", sent_bar=5)
    assert plan("0.003", [working], bar=5 + CLOSE_PATIENCE_BARS - 1) == FlattenPlan()
    assert plan("0.003", [working], bar=5 + CLOSE_PATIENCE_BARS) == FlattenPlan(cancel=("c1",))


def test_a_close_overtaken_by_fills_is_cancelled() -> None:
    # Something not in flight reduced the leg: the close now exceeds what is held.
    p = plan("0.001", [close("c1", "0.002", sent_bar=0)])
    assert p.cancel == ("c1",) and p.close is None


def test_flat_with_orders_left_waits_then_is_done() -> None:
    assert plan("0", [tp("tp", "0.001", pending=True)]) == FlattenPlan()
    assert plan("0", []) == FlattenPlan(done=True)


def test_gives_up_after_repeated_failures() -> None:
    p = plan("0.002", [], close_failures=MAX_CLOSE_FAILURES)
    assert p.give_up == f"failed {MAX_CLOSE_FAILURES} times" and p.close is None


def test_a_sliver_below_the_minimum_is_handed_back_only_when_nothing_can_change_it() -> None:
    rules = replace(RULES, min_qty=D("0.005"))
    assert plan("0.003", [tp("tp", "0.002", pending=True)], rules=rules) == FlattenPlan()
    gave_up = plan("0.003", [], rules=rules)
    assert gave_up.close is None
    assert gave_up.give_up == "left 0.003 below the venue's minimum order size; close it by hand"


def test_min_notional_needs_a_price() -> None:
    rules = replace(RULES, min_notional=D(1000))
    assert plan("0.002", [], rules=rules).give_up is not None  # 0.002 * 60000 = 120 < 1000
    assert plan("0.002", [], rules=rules, reference=None).close == Close(False, D("0.002"))


# ---------------------------------------------------------------- properties

qty = st.integers(min_value=1, max_value=40).map(lambda n: n * LOT)
leg_orders = st.lists(
    st.builds(
        LegOrder,
        client_order_id=st.uuids().map(str),
        buy=st.booleans(),
        leaves=qty,
        is_close=st.booleans(),
        pending_cancel=st.booleans(),
        sent_bar=st.one_of(st.none(), st.integers(0, 10)),
    ),
    max_size=8,
    unique_by=lambda o: o.client_order_id,
)
held_qty = st.integers(min_value=-60, max_value=60).map(lambda n: n * LOT)


@settings(deadline=None)
@given(held=held_qty, orders=leg_orders, failures=st.integers(0, 4), bar=st.integers(0, 12))
def test_plan_properties(held: Decimal, orders: list[LegOrder], failures: int, bar: int) -> None:
    p = plan_flatten(held, orders, close_failures=failures, bar=bar, reference=PRICE, rules=RULES)
    by_id = {o.client_order_id: o for o in orders}
    # Cancels: each once, only our orders, never one already being cancelled, and every
    # order that is not a close is being cancelled once the plan is carried out.
    assert len(set(p.cancel)) == len(p.cancel)
    assert all(cid in by_id and not by_id[cid].pending_cancel for cid in p.cancel)
    assert all(o.pending_cancel or o.client_order_id in p.cancel for o in orders if not o.is_close)
    in_flight = reducing_in_flight(held, orders)
    if p.close is not None:
        # Never past flat, whatever fills: the close plus all that may still reduce the leg.
        assert p.close.qty > 0
        assert p.close.qty + in_flight <= abs(held)
        assert p.close.buy is (held < 0)
        assert not any(o.is_close for o in orders)  # one close at a time
        assert p.close.qty >= RULES.min_qty and p.close.qty * PRICE >= RULES.min_notional
    assert p.done is (held == 0 and not orders)
    if p.give_up is not None:
        assert held != 0 and p.close is None and not any(o.is_close for o in orders)
        assert failures >= MAX_CLOSE_FAILURES or in_flight == 0
    # Progress: a leg with nothing in flight is closed in one go.
    if held != 0 and not orders and failures < MAX_CLOSE_FAILURES:
        assert p.close == Close(buy=held < 0, qty=abs(held))


# ---------------------------------------------------------------- a venue in any order


@dataclass
class Venue:
    """The leg and its orders as a venue sees them; fills and acks arrive when told."""

    held: Decimal
    orders: dict[str, LegOrder]
    bar: int = 0
    seq: int = 0

    def carry_out(self, p: FlattenPlan) -> None:
        for cid in p.cancel:
            self.orders[cid] = replace(self.orders[cid], pending_cancel=True)
        if p.close is not None:
            self.seq += 1
            cid = f"close-{self.seq}"
            self.orders[cid] = LegOrder(cid, p.close.buy, p.close.qty, True, False, self.bar)

    def fill(self, cid: str, amount: Decimal) -> None:
        order = self.orders[cid]
        amount = min(amount, order.leaves)
        self.held += amount if order.buy else -amount
        if order.leaves == amount:
            del self.orders[cid]
        else:
            self.orders[cid] = replace(order, leaves=order.leaves - amount)

    def plan(self) -> FlattenPlan:
        return plan_flatten(
            self.held,
            list(self.orders.values()),
            close_failures=0,
            bar=self.bar,
            reference=PRICE,
            rules=RULES,
        )


@st.composite
def covered_leg(draw: st.DrawFn) -> Venue:
    """A long or short leg whose exits cover at most its position, plus some entries."""
    sign = draw(st.sampled_from([1, -1]))
    exit_lots = draw(st.lists(st.integers(1, 5), max_size=4))
    spare = draw(st.integers(0 if exit_lots else 1, 5))  # exits may cover all of it
    held = (sum(exit_lots) + spare) * LOT * sign
    orders: dict[str, LegOrder] = {}
    for i, lots in enumerate(exit_lots):
        orders[f"tp{i}"] = LegOrder(f"tp{i}", sign < 0, lots * LOT, False, draw(st.booleans()))
    for i, lots in enumerate(draw(st.lists(st.integers(1, 5), max_size=3))):
        orders[f"entry{i}"] = LegOrder(f"entry{i}", sign > 0, lots * LOT, False, False)
    return Venue(held=held, orders=orders)


@settings(max_examples=300, deadline=None)  # a shared CI machine is slow at times
@given(venue=covered_leg(), data=st.data())
def test_no_order_of_fills_and_acks_flips_the_leg(venue: Venue, data: st.DataObject) -> None:
    sign = 1 if venue.held > 0 else -1
    for _ in range(data.draw(st.integers(1, 40))):
        venue.carry_out(venue.plan())
        event = data.draw(st.sampled_from(["fill", "ack", "expire", "bar"]))
        ids = sorted(venue.orders)
        if event == "fill" and ids:
            cid = data.draw(st.sampled_from(ids))
            venue.fill(cid, data.draw(st.integers(1, 10)) * LOT)
        elif event == "ack":
            pending = sorted(c for c, o in venue.orders.items() if o.pending_cancel)
            if pending:
                del venue.orders[data.draw(st.sampled_from(pending))]
        elif event == "expire":  # an IOC close's unfilled rest is cancelled by the venue
            closes = sorted(c for c, o in venue.orders.items() if o.is_close)
            if closes:
                del venue.orders[data.draw(st.sampled_from(closes))]
        else:
            venue.bar += 1
        assert venue.held * sign >= 0, f"the leg flipped to {venue.held}"
    # Then the venue answers everything: the flatten ends flat, with nothing left.
    for _ in range(20):
        p = venue.plan()
        if p.done:
            break
        venue.carry_out(p)
        for cid, order in list(venue.orders.items()):
            if order.pending_cancel:
                del venue.orders[cid]
            elif order.is_close:
                venue.fill(cid, order.leaves)
        assert venue.held * sign >= 0
    assert venue.held == 0 and not venue.orders

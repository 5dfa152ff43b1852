"""MutableCounters mirrors snapshot.Counters field for field, type for type."""

from __future__ import annotations

import typing

import msgspec

from hedgegrid_ops.snapshot import Counters
from hedgegrid_ops.strategy.counters import MutableCounters


def test_declares_exactly_the_fields_of_counters_with_their_types() -> None:
    mine = typing.get_type_hints(MutableCounters)
    theirs = typing.get_type_hints(Counters)
    assert mine == theirs, "declare every snapshot.Counters field on MutableCounters too"


def test_counts_and_freezes() -> None:
    counters = MutableCounters()
    counters.bars_processed += 2
    counters.add_fill("buy", "maker")
    counters.add_submitted("sell")
    counters.funding_paid_usdt += 1.5
    frozen = counters.freeze()
    expected = msgspec.structs.replace(
        Counters(),
        bars_processed=2,
        fills_buy_maker=1,
        orders_submitted_sell=1,
        funding_paid_usdt=1.5,
    )
    assert frozen == expected

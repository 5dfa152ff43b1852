"""OrderLedger: the strategy's per-order bookkeeping, forgotten in one call."""

from __future__ import annotations

from decimal import Decimal

from hedgegrid_ops.strategy.ledger import OrderLedger


def _busy_ledger(cid: str) -> OrderLedger:
    """A ledger holding every kind of fact about ``cid``."""
    ledger = OrderLedger()
    ledger.add(cid)
    ledger.request_cancel(cid, at_venue=False)
    ledger.retry_cancel_from(cid, bar=7)
    ledger.mark_dead(cid)
    ledger.close_sent(cid, bar=3)
    ledger.amend_sent(cid, Decimal("0.004"))
    return ledger


def test_forget_drops_every_fact_about_an_order() -> None:
    ledger = _busy_ledger("a")
    ledger.add("b")
    ledger.forget("a")
    assert list(ledger.open_ids()) == ["b"]
    assert not ledger.cancel_requested("a")
    assert not ledger.release_held_cancel("a")
    assert not ledger.is_dead("a")
    assert ledger.close_sent_bar("a") is None
    assert ledger.amended_qty("a") is None
    # A forgotten retry does not resurrect anything later.
    ledger.release_cancel_retries(bar=100)
    assert not ledger.cancel_requested("a")


def test_open_ids_keep_submission_order() -> None:
    ledger = OrderLedger()
    for cid in ("c", "a", "b"):
        ledger.add(cid)
    ledger.forget("a")
    assert list(ledger.open_ids()) == ["c", "b"]
    assert len(ledger) == 2


def test_a_cancel_is_requested_once_and_held_until_accepted() -> None:
    ledger = OrderLedger()
    ledger.add("x")
    assert ledger.request_cancel("x", at_venue=False) is True
    assert ledger.request_cancel("x", at_venue=False) is False  # nothing more to send
    assert ledger.cancel_requested("x")
    assert ledger.release_held_cancel("x") is True  # send it now
    assert ledger.release_held_cancel("x") is False  # only once


def test_a_cancel_at_the_venue_is_not_held() -> None:
    ledger = OrderLedger()
    assert ledger.request_cancel("y", at_venue=True)
    assert not ledger.release_held_cancel("y")


def test_a_refused_cancel_counts_as_live_again_from_its_retry_bar() -> None:
    ledger = OrderLedger()
    ledger.request_cancel("z", at_venue=True)
    ledger.retry_cancel_from("z", bar=5)
    ledger.release_cancel_retries(bar=4)
    assert ledger.cancel_requested("z")
    ledger.release_cancel_retries(bar=5)
    assert not ledger.cancel_requested("z")
    assert ledger.request_cancel("z", at_venue=True)  # may be asked again


def test_the_newest_amendment_counts() -> None:
    ledger = OrderLedger()
    ledger.add("a")
    assert ledger.amended_qty("a") is None
    ledger.amend_sent("a", Decimal("0.004"))
    ledger.amend_sent("a", Decimal("0.006"))
    assert ledger.amended_qty("a") == Decimal("0.006")

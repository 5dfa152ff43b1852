"""The strategy's own bookkeeping of its orders, by client order id.

Nautilus's cache knows every order's state; what it cannot know is what *we*
have decided about an order and are still waiting on: a cancel we asked for but
the venue has not confirmed, a cancel held back until the order is accepted, a
cancel to try again on a later bar, a market remainder the venue has forgotten,
the bar a close was sent on, the quantity an amendment in flight asked for.
Those facts live here, in one object, so that forgetting a closed order is one
call and no set can be left behind.

Plain Python, no Nautilus import: it can be unit tested on its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal


class OrderLedger:
    """Ids of our not-yet-closed orders and the pending decisions about them."""

    def __init__(self) -> None:
        self._open: dict[str, None] = {}  # not-yet-closed orders, in submission order
        self._cancel_requested: set[str] = set()
        self._cancel_on_accept: set[str] = set()
        self._cancel_retry_bar: dict[str, int] = {}
        self._dead: set[str] = set()
        self._close_sent_bar: dict[str, int] = {}
        self._amended_qty: dict[str, Decimal] = {}

    # ------------------------------------------------------------------ the open set

    def add(self, cid: str) -> None:
        """An order we submitted (or found open at start-up) that is ours to track."""
        self._open[cid] = None

    def open_ids(self) -> Iterator[str]:
        """Ids of orders not yet closed, oldest submission first."""
        return iter(list(self._open))

    def forget(self, cid: str) -> None:
        """The order is closed: drop every fact about it."""
        self._open.pop(cid, None)
        self._cancel_requested.discard(cid)
        self._cancel_on_accept.discard(cid)
        self._cancel_retry_bar.pop(cid, None)
        self._dead.discard(cid)
        self._close_sent_bar.pop(cid, None)
        self._amended_qty.pop(cid, None)

    def __len__(self) -> int:
        return len(self._open)

    # ------------------------------------------------------------------ cancels

    def cancel_requested(self, cid: str) -> bool:
        """We asked to cancel this order and have not heard that the venue refused."""
        return cid in self._cancel_requested

    def request_cancel(self, cid: str, *, at_venue: bool) -> bool:
        """Record a cancel; False when one is already requested (nothing to send).

        An order not yet at the venue has its cancel held until it is accepted
        (see ``release_held_cancel``).
        """
        if cid in self._cancel_requested:
            return False
        self._cancel_requested.add(cid)
        if not at_venue:
            self._cancel_on_accept.add(cid)
        return True

    def release_held_cancel(self, cid: str) -> bool:
        """The order was accepted: True when a held cancel must be sent now."""
        if cid not in self._cancel_on_accept:
            return False
        self._cancel_on_accept.discard(cid)
        return True

    def retry_cancel_from(self, cid: str, bar: int) -> None:
        """The venue refused a cancel: the order counts as live again from ``bar`` on."""
        self._cancel_retry_bar[cid] = bar

    def release_cancel_retries(self, bar: int) -> None:
        """Clear the cancel request of orders whose retry bar has come."""
        for cid, due in list(self._cancel_retry_bar.items()):
            if bar >= due:
                del self._cancel_retry_bar[cid]
                self._cancel_requested.discard(cid)

    # ------------------------------------------------------------------ dead remainders

    def mark_dead(self, cid: str) -> None:
        """Open in Nautilus's cache but unknown to the venue: stop counting it."""
        self._dead.add(cid)

    def is_dead(self, cid: str) -> bool:
        return cid in self._dead

    # ------------------------------------------------------------------ closes

    def close_sent(self, cid: str, bar: int) -> None:
        """A flatten close went out on ``bar`` (how long it has been working)."""
        self._close_sent_bar[cid] = bar

    def close_sent_bar(self, cid: str) -> int | None:
        return self._close_sent_bar.get(cid)

    # ------------------------------------------------------------------ amendments

    def amend_sent(self, cid: str, qty: Decimal) -> None:
        """We asked the venue to make this order ``qty`` large (the newest request counts).

        Until the venue answers, Nautilus still shows the old quantity, but the venue
        may already fill the new one.
        """
        self._amended_qty[cid] = qty

    def amended_qty(self, cid: str) -> Decimal | None:
        return self._amended_qty.get(cid)

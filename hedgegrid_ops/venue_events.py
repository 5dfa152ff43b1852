"""Facts a venue adapter reports to the rest of the program over Nautilus's message bus.

Neutral on purpose: the live Binance clients publish these, the strategy and the
venue monitor subscribe, and neither side imports the other. Topics are plain
strings on the node's ``MessageBus``; payloads are small frozen dataclasses.
"""

from __future__ import annotations

from dataclasses import dataclass

FUNDING_TOPIC = "hedgegrid.venue.funding"
CONNECTIVITY_TOPIC = "hedgegrid.venue.connectivity"


@dataclass(frozen=True)
class FundingPaid:
    """A funding settlement booked by the venue (ACCOUNT_UPDATE reason FUNDING_FEE).

    ``amount`` is the balance change in ``asset``: negative when we paid, positive
    when we received. ``paid_usdt`` follows the strategy's sign (positive = cost).
    """

    asset: str
    amount: float
    wallet_balance: float
    ts_event_ns: int

    @property
    def paid_usdt(self) -> float:
        return -self.amount


@dataclass(frozen=True)
class ConnectivityEvent:
    """One change in how we are connected to the venue.

    ``channel`` is ``user_stream``, ``market_stream`` or ``rest``; ``up`` says
    whether the channel works after this event; ``detail`` is one sentence for
    the operator (never a credential).
    """

    channel: str
    up: bool
    detail: str
    ts_ns: int

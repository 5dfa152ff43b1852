"""What the strategy tells the history about funding, over Nautilus's message bus.

Neutral and import-free so the strategy can publish without knowing who records:
``msgbus.publish(FUNDING_BOOKED_TOPIC, FundingBooked(...))`` each time it books a
funding payment (settled by the venue, or estimated on the simulated market).
"""

from __future__ import annotations

from dataclasses import dataclass

FUNDING_BOOKED_TOPIC = "hedgegrid.history.funding"


@dataclass(frozen=True, slots=True)
class FundingBooked:
    """One funding payment as the strategy booked it; ``paid_usdt`` > 0 means we paid."""

    paid_usdt: float
    ts_event_ns: int
    estimated: bool

"""The strategy's running counts; frozen into ``snapshot.Counters`` at each publish."""

from __future__ import annotations

import msgspec

from hedgegrid_ops.snapshot import Counters


class MutableCounters:
    """Mutable twin of ``snapshot.Counters``.

    The slots come from ``Counters`` itself; the annotations repeat its fields so a
    type checker sees them (``tests/unit/test_strategy_counters.py`` keeps the two
    lists equal, so a counter added to ``Counters`` must be added here too).
    """

    __slots__ = Counters.__struct_fields__
    bars_processed: int
    orders_submitted_buy: int
    orders_submitted_sell: int
    orders_cancelled: int
    orders_rejected: int
    orders_denied: int
    orders_rejected_margin: int
    orders_rejected_post_only: int
    fills_buy_maker: int
    fills_buy_taker: int
    fills_sell_maker: int
    fills_sell_taker: int
    funding_payments: int
    funding_paid_usdt: float
    fees_paid_usdt: float
    flattens: int
    recenters: int

    def __init__(self) -> None:
        for name, value in msgspec.structs.asdict(Counters()).items():
            setattr(self, name, value)

    def add_fill(self, side: str, liquidity: str) -> None:
        """Count one fill event; ``side`` is buy/sell, ``liquidity`` maker/taker."""
        name = f"fills_{side}_{liquidity}"
        setattr(self, name, getattr(self, name) + 1)

    def add_submitted(self, side: str) -> None:
        name = f"orders_submitted_{side}"
        setattr(self, name, getattr(self, name) + 1)

    def freeze(self) -> Counters:
        return Counters(**{name: getattr(self, name) for name in self.__slots__})

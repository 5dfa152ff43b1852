"""The strategy's running counts; frozen into ``snapshot.Counters`` at each publish."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from hedgegrid_ops.snapshot import Counters


@dataclass
class MutableCounters:
    bars_processed: int = 0
    orders_submitted_buy: int = 0
    orders_submitted_sell: int = 0
    orders_cancelled: int = 0
    orders_rejected: int = 0
    orders_denied: int = 0
    fills_buy_maker: int = 0
    fills_buy_taker: int = 0
    fills_sell_maker: int = 0
    fills_sell_taker: int = 0
    funding_payments: int = 0
    funding_paid_usdt: float = 0.0
    flattens: int = 0
    recenters: int = 0

    def add_fill(self, side: str, liquidity: str) -> None:
        """Count one fill event; ``side`` is buy/sell, ``liquidity`` maker/taker."""
        name = f"fills_{side}_{liquidity}"
        setattr(self, name, getattr(self, name) + 1)

    def add_submitted(self, side: str) -> None:
        name = f"orders_submitted_{side}"
        setattr(self, name, getattr(self, name) + 1)

    def freeze(self) -> Counters:
        return Counters(**asdict(self))

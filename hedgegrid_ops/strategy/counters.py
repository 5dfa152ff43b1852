"""The strategy's running counts; frozen into ``snapshot.Counters`` at each publish."""

from __future__ import annotations

import msgspec

from hedgegrid_ops.snapshot import Counters


class MutableCounters:
    """Mutable twin of ``snapshot.Counters``: the field list is defined once, there."""

    __slots__ = Counters.__struct_fields__

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

"""Read Nautilus's positions back, fill by fill, to check that no hedge leg ever flipped."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from nautilus_trader.model.enums import OrderSide


def flipped_legs(cache: Any) -> list[str]:
    """Legs whose net position ever crossed zero, replayed fill by fill.

    A hedge leg's position id (``...-LONG`` / ``...-SHORT``) is reused after it
    closes, so closed generations are read from the position snapshots as well as
    the live positions. A LONG leg must never go below zero, a SHORT leg above.
    """
    generations = list(cache.positions())
    for pid in {p.id for p in generations}:
        generations.extend(cache.position_snapshots(pid))
    fills: dict[str, dict[str, Any]] = {}
    for position in generations:
        for fill in position.events:
            fills.setdefault(position.id.value, {})[fill.trade_id.value] = fill
    flipped = []
    for pid, by_trade in fills.items():
        net = Decimal(0)
        for fill in sorted(by_trade.values(), key=lambda f: f.ts_event):
            qty = fill.last_qty.as_decimal()
            net += qty if fill.order_side == OrderSide.BUY else -qty
            if (net < 0 and pid.endswith("-LONG")) or (net > 0 and pid.endswith("-SHORT")):
                flipped.append(f"{pid} reached {net} on {fill.client_order_id.value}")
                break
    return flipped

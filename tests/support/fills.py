"""One fill-history record with plausible fields, for tests that seed a state directory."""

from __future__ import annotations

from hedgegrid_ops.history.store import FillRecord


def history_fill(
    trade_id: str, ts: float, realized: float, commission: float = 0.02, price: float = 60_000.0
) -> FillRecord:
    """A maker buy of 0.002 on the long leg; only the given fields vary between fills."""
    return FillRecord(
        ts=ts,
        trade_id=trade_id,
        client_order_id=f"HG1-LONG-00-{trade_id}",
        venue_order_id=f"V-{trade_id}",
        side="BUY",
        position_side="LONG",
        price=price,
        qty=0.002,
        commission=commission,
        commission_asset="USDT",
        liquidity="maker",
        realized_pnl=realized,
        request_id=None,
    )

"""Records a run for its report: one sample per bar, funding settlements, and fills.

The recorder listens to the strategy's :class:`~hedgegrid_ops.snapshot.SnapshotStore`
(it runs on the loop, after every published snapshot, and only keeps a few floats
per bar), so it sees exactly the numbers ``/status`` shows. Fills are read from
Nautilus's cache when the run ends: the venue's own record of every execution.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hedgegrid_ops.report.figures import (
    FillRecord,
    FundingEvent,
    RunFacts,
    Sample,
    funding_payment,
)
from hedgegrid_ops.snapshot import StrategySnapshot

NS_PER_S = 1_000_000_000


def _ns(seconds: float) -> int:
    """Event times travel as float seconds in snapshots; whole milliseconds are exact."""
    return round(seconds * 1000) * 1_000_000


class RunRecorder:
    """Snapshot listener that keeps the per-bar samples and applies funding."""

    def __init__(self) -> None:
        self.samples: list[Sample] = []
        self.funding: list[FundingEvent] = []
        self._last: StrategySnapshot | None = None
        self._settled_ns: int | None = None

    def __call__(self, snap: StrategySnapshot) -> None:
        """Keep one sample per bar: the state at the end of that bar's minute.

        Snapshots published between two bars (fills, a flatten, the stop) update the
        current bar's sample, so the last sample is always the latest state.
        """
        if snap.last_bar_event_time is None:
            return
        bar_ns = _ns(snap.last_bar_event_time)
        sample = Sample(
            ts_ns=bar_ns,
            price=snap.mid_price if snap.mid_price is not None else 0.0,
            balance=snap.balance_usdt,
            realized_pnl=snap.realized_pnl,
            unrealized_pnl=snap.unrealized_pnl,
            long_qty=snap.long.quantity,
            short_qty=snap.short.quantity,
            regime=snap.regime,
        )
        if self.samples and bar_ns <= self.samples[-1].ts_ns:
            self.samples[-1] = replace(sample, ts_ns=self.samples[-1].ts_ns)
        else:
            self._settle_funding(bar_ns)
            self.samples.append(sample)
        self._last = snap

    def _settle_funding(self, now_ns: int) -> None:
        """Apply the funding time the previous state announced once time has passed it."""
        prev = self._last
        if prev is None or prev.next_funding_time is None or prev.mid_price is None:
            return
        due = _ns(prev.next_funding_time)
        if now_ns < due or due == self._settled_ns:
            return
        self._settled_ns = due
        long_qty, short_qty = prev.long.quantity, prev.short.quantity
        self.funding.append(
            FundingEvent(
                ts_ns=due,
                rate=prev.funding_rate,
                mark=prev.mid_price,
                long_qty=long_qty,
                short_qty=short_qty,
                payment=funding_payment(prev.funding_rate, prev.mid_price, long_qty, short_qty),
            )
        )

    def facts(self) -> RunFacts:
        """Counts from the last snapshot (zero when nothing was published)."""
        snap = self._last
        if snap is None:
            return RunFacts(orders_submitted=0, flattens=0, kill_switch_trips=None)
        c = snap.counters
        return RunFacts(
            orders_submitted=c.orders_submitted_buy + c.orders_submitted_sell,
            flattens=c.flattens,
            kill_switch_trips=getattr(c, "kill_switch_trips", None),
        )


def fills_from_cache(cache: Any, strategy_id: Any) -> list[FillRecord]:
    """Every fill of the strategy's orders, oldest first, from Nautilus's cache."""
    from nautilus_trader.model.enums import LiquiditySide
    from nautilus_trader.model.events import OrderFilled

    out: list[FillRecord] = []
    for order in cache.orders(strategy_id=strategy_id):
        for event in order.events:
            if not isinstance(event, OrderFilled):
                continue
            out.append(
                FillRecord(
                    ts_ns=event.ts_event,
                    client_order_id=event.client_order_id.value,
                    venue_order_id=event.venue_order_id.value,
                    trade_id=event.trade_id.value,
                    position_id=event.position_id.value if event.position_id else "",
                    side="BUY" if event.is_buy else "SELL",
                    price=float(event.last_px),
                    qty=float(event.last_qty),
                    liquidity="maker" if event.liquidity_side == LiquiditySide.MAKER else "taker",
                    commission=float(event.commission),
                    commission_currency=event.commission.currency.code,
                )
            )
    out.sort(key=lambda f: f.ts_ns)
    return out

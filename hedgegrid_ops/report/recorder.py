"""Records a run for its report: one sample per bar, funding settlements, and fills.

The recorder listens to the strategy's :class:`~hedgegrid_ops.snapshot.SnapshotStore`
(it runs on the loop, after every published snapshot), so it sees exactly the numbers
``/status`` shows. ``backtest`` keeps every bar's sample (its charts draw them); ``run``
can last for days, so it keeps only their running ``SampleSummary`` (bounded memory).
``backtest`` reads its fills from Nautilus's cache when the run ends (the venue's own
record of every execution); ``run`` counts them from the strategy's counters, since a
long run's cache no longer holds the fills of purged orders.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

from hedgegrid_ops.report.figures import (
    FillRecord,
    FillTally,
    FundingEvent,
    RunFacts,
    Sample,
    SampleSummary,
    funding_payment,
)
from hedgegrid_ops.snapshot import StrategySnapshot

NS_PER_S = 1_000_000_000


def _ns(seconds: float) -> int:
    """Event times travel as float seconds in snapshots; whole milliseconds are exact."""
    return round(seconds * 1000) * 1_000_000


class RunRecorder:
    """Snapshot listener that keeps the per-bar samples and applies funding."""

    def __init__(self, keep_samples: bool = True, starting_balance: float | None = None) -> None:
        """``keep_samples`` False keeps no list, only the running summary (see ``summary``)."""
        self.keep_samples = keep_samples
        self.samples: list[Sample] = []
        self.funding: list[FundingEvent] = []
        self._summary = SampleSummary(starting_balance)
        self._pending: Sample | None = None  # the current bar's sample, not yet summarized
        self._settled = 0.0  # funding settled so far (USDT)
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
        pending = self._pending
        if pending is not None and bar_ns <= pending.ts_ns:
            sample = replace(sample, ts_ns=pending.ts_ns)
            if self.keep_samples:
                self.samples[-1] = sample
        else:
            if pending is not None:  # its bar is over: it is final
                self._summary.add(pending, self._settled)
            self._settle_funding(bar_ns)
            if self.keep_samples:
                self.samples.append(sample)
        self._pending = sample
        self._last = snap

    def summary(self) -> SampleSummary:
        """The samples so far, the current bar's included, as ``compute_figures`` sees them."""
        out = copy.deepcopy(self._summary)
        if self._pending is not None:
            out.add(self._pending, self._settled)
        return out

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
        payment = funding_payment(prev.funding_rate, prev.mid_price, long_qty, short_qty)
        self.funding.append(
            FundingEvent(
                ts_ns=due,
                rate=prev.funding_rate,
                mark=prev.mid_price,
                long_qty=long_qty,
                short_qty=short_qty,
                payment=payment,
            )
        )
        self._settled += payment

    def fill_tally(self) -> FillTally:
        """The run's fills from the last snapshot's counters (zero before any snapshot).

        The counters count every fill since start-up; Nautilus's cache does not keep
        them all in a long run (closed orders are purged, see ``housekeeping``).
        """
        snap = self._last
        if snap is None:
            return FillTally(0, 0, 0.0)
        c = snap.counters
        maker = c.fills_buy_maker + c.fills_sell_maker
        return FillTally(maker + c.fills_buy_taker + c.fills_sell_taker, maker, c.fees_paid_usdt)

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

"""The adapter's USDT-M futures execution client, plus funding paid and stream reports.

Two facts the 1.231 adapter receives but does not pass on:

- Funding settlements: an ``ACCOUNT_UPDATE`` with reason ``FUNDING_FEE`` becomes
  only a new account balance in Nautilus. Here it is also published as
  ``FundingPaid`` (the wallet change), so ``hedgegrid_funding_paid_usdt`` counts
  what the venue actually booked.
- User-stream recovery: after a dropped stream or an expired listenKey the
  adapter makes a new listenKey, reconnects and reconciles orders and positions
  over REST before releasing buffered events. While that runs our view of the
  account may be stale, so the stream is reported down until it is done.

One reconciliation rule differs from the adapter's: the mass status keeps the
venue's *open* orders and the orders Nautilus already knows, with their fills,
and drops closed history it has never seen. The adapter reports up to 1,000 past
orders per symbol, and replaying them order by order (not in time order) rebuilt
the hedge legs from fills out of sequence: right quantity after correction, wrong
entry price. Without that history each leg is booked from positionRisk, at the
venue's own entry price. (A lookback window is no substitute: the adapter filters
by creation time, so it would also drop exits that are still open.)
"""

from __future__ import annotations

from nautilus_trader.adapters.binance.futures.enums import BinanceFuturesPositionUpdateReason
from nautilus_trader.adapters.binance.futures.execution import BinanceFuturesExecutionClient
from nautilus_trader.execution.reports import ExecutionMassStatus

from hedgegrid_ops.venue_events import (
    CONNECTIVITY_TOPIC,
    FUNDING_TOPIC,
    ConnectivityEvent,
    FundingPaid,
)


class HedgegridBinanceFuturesExecutionClient(BinanceFuturesExecutionClient):
    """``BinanceFuturesExecutionClient`` that reports funding and user-stream recovery."""

    def _handle_account_update(self, raw: bytes) -> None:
        update = self._decoder_futures_account_update.decode(raw)
        before = self._wallet_balances()
        super()._handle_account_update(raw)
        if update.a.m != BinanceFuturesPositionUpdateReason.FUNDING_FEE:
            return
        for balance in update.a.B:
            # The wallet moved by the funding amount; ``bc`` should say the same, but
            # the wallet difference does not depend on how a venue fills ``bc``.
            wallet = float(balance.wb)
            previous = before.get(balance.a)
            amount = wallet - previous if previous is not None else float(balance.bc)
            self._msgbus.publish(
                FUNDING_TOPIC,
                FundingPaid(
                    asset=balance.a,
                    amount=amount,
                    wallet_balance=wallet,
                    ts_event_ns=update.T * 1_000_000,
                ),
            )

    def _wallet_balances(self) -> dict[str, float]:
        account = self.get_account()
        if account is None:
            return {}
        return {
            currency.code: float(money.as_decimal())
            for currency, money in account.balances_total().items()
        }

    async def generate_mass_status(
        self, lookback_mins: int | None = None
    ) -> ExecutionMassStatus | None:
        full = await super().generate_mass_status(lookback_mins)
        if full is None:
            return None
        kept = {
            venue_id: report
            for venue_id, report in full.order_reports.items()
            if report.is_open
            or (
                report.client_order_id is not None
                and self._cache.order(report.client_order_id) is not None
            )
        }
        dropped = len(full.order_reports) - len(kept)
        if not dropped:
            return full
        mass = ExecutionMassStatus(
            client_id=full.client_id,
            account_id=full.account_id,
            venue=full.venue,
            report_id=full.id,
            ts_init=full.ts_init,
        )
        mass.add_order_reports(list(kept.values()))
        mass.add_fill_reports(
            [f for venue_id, fills in full.fill_reports.items() if venue_id in kept for f in fills]
        )
        mass.add_position_reports(
            [p for reports in full.position_reports.values() for p in reports]
        )
        self._log.info(
            f"Reconciliation: kept {len(kept)} open or known orders, "
            f"left out {dropped} closed orders from before this run"
        )
        return mass

    async def _reconcile_after_resubscribe(self) -> None:
        self._publish_stream(False, "user data stream re-established; reconciling with the venue")
        try:
            await super()._reconcile_after_resubscribe()
        finally:
            self._publish_stream(True, "user data stream re-established and reconciled")

    def _publish_stream(self, up: bool, detail: str) -> None:
        self._msgbus.publish(
            CONNECTIVITY_TOPIC,
            ConnectivityEvent("user_stream", up, detail, self._clock.timestamp_ns()),
        )

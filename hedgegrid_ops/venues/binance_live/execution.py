"""The adapter's USDT-M futures execution client, plus funding paid and stream reports.

Two facts the 1.231 adapter receives but does not pass on:

- Funding settlements: an ``ACCOUNT_UPDATE`` with reason ``FUNDING_FEE`` becomes
  only a new account balance in Nautilus. Here it is also published as
  ``FundingPaid`` (the balance change ``bc``), so ``hedgegrid_funding_paid_usdt``
  counts what the venue actually booked.
- User-stream recovery: after a dropped stream or an expired listenKey the
  adapter makes a new listenKey, reconnects and reconciles orders and positions
  over REST before releasing buffered events. While that runs our view of the
  account may be stale, so the stream is reported down until it is done.
"""

from __future__ import annotations

from nautilus_trader.adapters.binance.futures.enums import BinanceFuturesPositionUpdateReason
from nautilus_trader.adapters.binance.futures.execution import BinanceFuturesExecutionClient

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

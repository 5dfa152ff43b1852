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

Positions are only trusted when they did not move while the orders and fills were
read. The adapter reads orders, fills and positions concurrently, and reading a
long order history takes seconds; Nautilus then "corrects" each hedge leg to the
position read, with a synthetic fill. A fill made in between was counted twice
(once by that correction, once by its own report) and the cached leg stayed wrong
from then on: a close larger than the venue's leg (-2022), or a leg that looked
flipped. So positions are read before and after the orders and fills, and used
only when both reads agree. After a user-stream outage, when they never agree, the
positions are left out: our fills are already in the order reports. At start-up,
positions are needed to adopt the legs, so the last read is used, with a warning.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from nautilus_trader.adapters.binance.futures.enums import BinanceFuturesPositionUpdateReason
from nautilus_trader.adapters.binance.futures.execution import BinanceFuturesExecutionClient
from nautilus_trader.common.enums import LogLevel
from nautilus_trader.core.uuid import UUID4
from nautilus_trader.execution.messages import GeneratePositionStatusReports
from nautilus_trader.execution.reports import ExecutionMassStatus, PositionStatusReport

from hedgegrid_ops.venue_events import (
    CONNECTIVITY_TOPIC,
    FUNDING_TOPIC,
    ConnectivityEvent,
    FundingPaid,
)

# Reads of orders and fills tried before giving up on positions that hold still.
POSITION_READ_ATTEMPTS = 4

PositionKey = tuple[str, str | None]


def position_view(reports: Iterable[PositionStatusReport]) -> dict[PositionKey, tuple]:
    """What a set of position reports says, keyed by instrument and hedge leg.

    Binance leaves flat legs out of positionRisk, so a missing leg and a flat one
    compare equal. Quantity and entry price together: two fills that cancel out in
    quantity still move the entry price.
    """
    view: dict[PositionKey, tuple] = {}
    for r in reports:
        qty: Decimal = r.signed_decimal_qty
        if qty == 0:
            continue
        leg = r.venue_position_id.value if r.venue_position_id is not None else None
        view[(r.instrument_id.value, leg)] = (qty, r.avg_px_open)
    return view


class HedgegridBinanceFuturesExecutionClient(BinanceFuturesExecutionClient):
    """``BinanceFuturesExecutionClient`` that reports funding and user-stream recovery."""

    _resubscribing = False  # a reconciliation after a user-stream outage is running

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
        full: ExecutionMassStatus | None = None
        positions: list[PositionStatusReport] = []
        for attempt in range(1, POSITION_READ_ATTEMPTS + 1):
            before = await self._read_positions()
            full = await super().generate_mass_status(lookback_mins)
            if full is None:
                return None
            positions = await self._read_positions()
            if position_view(before) == position_view(positions):
                break
            self._log.warning(
                f"Reconciliation: positions moved while orders and fills were read "
                f"(attempt {attempt} of {POSITION_READ_ATTEMPTS})"
            )
        else:
            if self._resubscribing:
                self._log.warning(
                    "Reconciliation: positions never held still; left out, "
                    "the legs follow the order and fill reports"
                )
                positions = []
            else:
                self._log.warning(
                    "Reconciliation: positions never held still; the last read is used"
                )
        assert full is not None
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
        mass.add_position_reports(positions)
        if dropped:
            self._log.info(
                f"Reconciliation: kept {len(kept)} open or known orders, "
                f"left out {dropped} closed orders from before this run"
            )
        return mass

    async def _read_positions(self) -> list[PositionStatusReport]:
        return await self.generate_position_status_reports(
            GeneratePositionStatusReports(
                instrument_id=None,
                start=None,
                end=None,
                command_id=UUID4(),
                ts_init=self._clock.timestamp_ns(),
                log_receipt_level=LogLevel.DEBUG,
            )
        )

    async def _reconcile_after_resubscribe(self) -> None:
        self._publish_stream(False, "user data stream re-established; reconciling with the venue")
        self._resubscribing = True
        try:
            await super()._reconcile_after_resubscribe()
        finally:
            self._resubscribing = False
            self._publish_stream(True, "user data stream re-established and reconciled")

    def _publish_stream(self, up: bool, detail: str) -> None:
        self._msgbus.publish(
            CONNECTIVITY_TOPIC,
            ConnectivityEvent("user_stream", up, detail, self._clock.timestamp_ns()),
        )

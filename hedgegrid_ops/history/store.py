"""Fill and funding history in the state directory's database, surviving restarts.

The tables (``fills``, ``funding``) are migration 2 of the state store
(``hedgegrid_ops/state/store.py``): one SQLite database per state directory, WAL,
one writer thread. ``record_fill`` and ``record_funding`` only queue a write on that
thread (``StateStore.submit``), so the event loop never waits on a disk; a burst of
fills is committed as one transaction. Reads (``fills``, ``daily``) open their own
read-only connection, which WAL lets run beside the writer, and are meant to run off
the loop (``asyncio.to_thread``); each is one indexed query.

No Nautilus here: ``history/recorder.py`` turns Nautilus events into ``FillRecord``.
"""

from __future__ import annotations

import sqlite3
from dataclasses import astuple, dataclass, fields
from datetime import UTC, datetime

from hedgegrid_ops.state.store import StateStore


@dataclass(frozen=True, slots=True)
class FillRecord:
    """One execution as the venue reported it, plus what it did to realized PnL.

    ``realized_pnl`` is the change of the position's realized PnL this fill caused,
    net of its commission (Nautilus's convention, the one ``/status`` reports).
    """

    ts: float
    trade_id: str
    client_order_id: str
    venue_order_id: str
    side: str
    position_side: str | None
    price: float
    qty: float
    commission: float
    commission_asset: str
    liquidity: str
    realized_pnl: float
    request_id: str | None


@dataclass(frozen=True, slots=True)
class StoredFill:
    """A fill read back, with its sequence number (the paging cursor)."""

    seq: int
    fill: FillRecord


@dataclass(frozen=True, slots=True)
class DayTotals:
    """One UTC day: realized PnL (net of fees), fees, funding paid and the number of fills."""

    day: str
    realized_pnl: float
    fees: float
    funding: float
    fills: int


_FILL_COLUMNS = tuple(f.name for f in fields(FillRecord))
_INSERT_FILL = (
    f"INSERT OR IGNORE INTO fills (day, {', '.join(_FILL_COLUMNS)}) "
    f"VALUES (?, {', '.join('?' for _ in _FILL_COLUMNS)})"
)


def utc_day(ts: float) -> str:
    """The UTC calendar day of a unix timestamp, as YYYY-MM-DD."""
    return datetime.fromtimestamp(ts, UTC).date().isoformat()


class FillHistory:
    """The fill and funding history of one state directory (the store must be open)."""

    def __init__(self, state: StateStore) -> None:
        self._state = state
        self.path = state.path

    # ------------------------------------------------------------------ writes (any thread)

    def record_fill(self, fill: FillRecord) -> None:
        """Queue one fill (a fill already stored, same trade and order id, is ignored)."""
        params = (utc_day(fill.ts), *astuple(fill))
        self._state.submit(lambda conn: conn.execute(_INSERT_FILL, params))

    def record_funding(self, ts: float, paid_usdt: float, estimated: bool) -> None:
        """Queue one funding payment (positive ``paid_usdt``: we paid)."""
        params = (ts, utc_day(ts), paid_usdt, int(estimated))
        self._state.submit(
            lambda conn: conn.execute(
                "INSERT INTO funding (ts, day, paid_usdt, estimated) VALUES (?, ?, ?, ?)", params
            )
        )

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued so far is committed (tests). Not on the loop."""
        return self._state.flush(timeout)

    # ------------------------------------------------------------------ reads (off the loop)

    def _read(self) -> sqlite3.Connection:
        return sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5.0)

    def fills(
        self, since: float | None = None, before: int | None = None, limit: int = 100
    ) -> list[StoredFill]:
        """Newest first: fills at or after ``since`` with a sequence number below ``before``."""
        query = f"SELECT seq, {', '.join(_FILL_COLUMNS)} FROM fills WHERE 1=1"
        params: list[object] = []
        if since is not None:
            query += " AND ts >= ?"
            params.append(since)
        if before is not None:
            query += " AND seq < ?"
            params.append(before)
        query += " ORDER BY seq DESC LIMIT ?"
        params.append(limit)
        conn = self._read()
        try:
            rows = conn.execute(query, params).fetchall()
        finally:
            conn.close()
        return [StoredFill(row[0], FillRecord(*row[1:])) for row in rows]

    def daily(self) -> list[DayTotals]:
        """One row per UTC day with a fill or a funding payment, oldest day first."""
        conn = self._read()
        try:
            fill_rows = conn.execute(
                "SELECT day, SUM(realized_pnl), "
                "SUM(CASE WHEN commission_asset = 'USDT' THEN commission ELSE 0 END), COUNT(*) "
                "FROM fills GROUP BY day"
            ).fetchall()
            funding_rows = conn.execute(
                "SELECT day, SUM(paid_usdt) FROM funding GROUP BY day"
            ).fetchall()
        finally:
            conn.close()
        days: dict[str, list[float]] = {}
        for day, realized, fees, count in fill_rows:
            days[day] = [realized, fees, 0.0, count]
        for day, paid in funding_rows:
            days.setdefault(day, [0.0, 0.0, 0.0, 0])[2] = paid
        return [
            DayTotals(day, realized, fees, funding, int(count))
            for day, (realized, fees, funding, count) in sorted(days.items())
        ]

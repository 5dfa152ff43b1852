"""Fill and funding history in the state directory's database, surviving restarts.

The tables (``fills``, ``funding``; ``fill_days``) are migrations 2 and 3 of the
state store (``hedgegrid_ops/state/store.py``): one SQLite database per state
directory, WAL, one writer thread. ``record_fill`` and ``record_funding`` only queue a
write on that thread (``StateStore.submit``), so the event loop never waits on a disk;
a burst of fills is committed as one transaction. Reads (``fills``, ``daily``) open their own
read-only connection, which WAL lets run beside the writer, and are meant to run off
the loop (``asyncio.to_thread``); each is one indexed query.

Retention: one row per fill is about 0.4 KB, so a grid that runs for months would grow
the database without bound. ``archive_old_fills`` folds the fills of days older than a
window into one ``fill_days`` row per day (realized PnL, fees, count) and deletes them,
in one transaction: ``GET /fills`` then reaches back only over the window, while
``GET /pnl/daily`` still adds up every day. The window is counted back from the newest
fill, not from the wall clock, so a paper run whose market clock is not today's keeps
its window too.

No Nautilus here: ``history/recorder.py`` turns Nautilus events into ``FillRecord``.
"""

from __future__ import annotations

import sqlite3
from dataclasses import astuple, dataclass, fields
from datetime import UTC, datetime

from hedgegrid_ops.logs import get_logger
from hedgegrid_ops.state.store import StateStore

SECONDS_PER_DAY = 86_400
# ``GET /fills`` keeps the newest fill's day and this many days before it (0: every fill):
# at a live grid's few thousand fills a day, a few hundred MB.
DEFAULT_FILL_HISTORY_DAYS = 90


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
# A fill of a day already folded into ``fill_days`` can only be one recorded before
# (its row deleted since): inserting it again would count it twice in /pnl/daily.
_INSERT_FILL = (
    f"INSERT OR IGNORE INTO fills (day, {', '.join(_FILL_COLUMNS)}) "
    f"SELECT ?, {', '.join('?' for _ in _FILL_COLUMNS)} "
    "WHERE NOT EXISTS (SELECT 1 FROM fill_days WHERE day = ?)"
)
# Realized PnL, USDT fees and the number of fills, per day.
_DAY_SUMS = (
    "day, SUM(realized_pnl), "
    "SUM(CASE WHEN commission_asset = 'USDT' THEN commission ELSE 0 END), COUNT(*)"
)
_FOLD_DAYS = (
    f"INSERT INTO fill_days (day, realized_pnl, fees, fills) SELECT {_DAY_SUMS} "
    "FROM fills WHERE ts < ? GROUP BY day "
    "ON CONFLICT(day) DO UPDATE SET realized_pnl = realized_pnl + excluded.realized_pnl, "
    "fees = fees + excluded.fees, fills = fills + excluded.fills"
)


def utc_day(ts: float) -> str:
    """The UTC calendar day of a unix timestamp, as YYYY-MM-DD."""
    return datetime.fromtimestamp(ts, UTC).date().isoformat()


def archive_cutoff(newest_ts: float, keep_days: int) -> float:
    """The instant before which fills are folded away: the start (UTC) of the day
    ``keep_days`` days before the newest fill's day, so whole days go, never part of one.
    (Unix time has no leap seconds: UTC days start at multiples of 86,400.)"""
    newest_day_start = newest_ts - newest_ts % SECONDS_PER_DAY
    return newest_day_start - keep_days * SECONDS_PER_DAY


class FillHistory:
    """The fill and funding history of one state directory (the store must be open)."""

    def __init__(self, state: StateStore) -> None:
        self._state = state
        self.path = state.path

    # ------------------------------------------------------------------ writes (any thread)

    def record_fill(self, fill: FillRecord) -> None:
        """Queue one fill (a fill already stored, same trade and order id, is ignored)."""
        day = utc_day(fill.ts)
        params = (day, *astuple(fill), day)
        self._state.submit(lambda conn: conn.execute(_INSERT_FILL, params))

    def record_funding(self, ts: float, paid_usdt: float, estimated: bool) -> None:
        """Queue one funding payment (positive ``paid_usdt``: we paid)."""
        params = (ts, utc_day(ts), paid_usdt, int(estimated))
        self._state.submit(
            lambda conn: conn.execute(
                "INSERT INTO funding (ts, day, paid_usdt, estimated) VALUES (?, ?, ?, ?)", params
            )
        )

    def archive_old_fills(self, keep_days: int) -> None:
        """Queue the retention: keep the newest fill's day and the ``keep_days`` before it,
        fold older fills into per-day totals (``fill_days``) and delete them."""
        self._state.submit(lambda conn: _fold_old_fills(conn, keep_days))

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
            # One snapshot for the three reads: a retention committed between them would
            # count a day twice (folded and still in ``fills``) or not at all.
            conn.execute("BEGIN")
            fill_rows = conn.execute(f"SELECT {_DAY_SUMS} FROM fills GROUP BY day").fetchall()
            folded_rows = conn.execute(
                "SELECT day, realized_pnl, fees, fills FROM fill_days"
            ).fetchall()
            funding_rows = conn.execute(
                "SELECT day, SUM(paid_usdt) FROM funding GROUP BY day"
            ).fetchall()
        finally:
            conn.close()
        days: dict[str, list[float]] = {}
        for day, realized, fees, count in (*folded_rows, *fill_rows):
            totals = days.setdefault(day, [0.0, 0.0, 0.0, 0])
            totals[0] += realized
            totals[1] += fees
            totals[3] += count
        for day, paid in funding_rows:
            days.setdefault(day, [0.0, 0.0, 0.0, 0])[2] = paid
        return [
            DayTotals(day, realized, fees, funding, int(count))
            for day, (realized, fees, funding, count) in sorted(days.items())
        ]


def _fold_old_fills(conn: sqlite3.Connection, keep_days: int) -> None:
    """On the writer thread, inside its transaction: both statements or neither.

    The line is logged before the batch commits; a commit that fails is reported right
    after it (``state_write_failed``), and the fills are then still in ``fills``."""
    (newest,) = conn.execute("SELECT MAX(ts) FROM fills").fetchone()
    if newest is None:
        return
    cutoff = archive_cutoff(newest, keep_days)
    days = conn.execute(_FOLD_DAYS, (cutoff,)).rowcount
    if days <= 0:
        return
    fills = conn.execute("DELETE FROM fills WHERE ts < ?", (cutoff,)).rowcount
    get_logger("history").info(
        "fill_history_archived", days=days, fills=fills, before_day=utc_day(cutoff)
    )

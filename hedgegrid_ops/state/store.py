"""The state directory: one SQLite database (WAL) that survives restarts and crashes.

Why SQLite: a committed transaction is all-or-nothing even when the process is
SIGKILLed or the machine loses power mid-write, so a restart finds the old or the
new state, never a torn one, without us writing rename dances per file.

Why a writer thread: the event loop must never wait on a disk. The loop only
*enqueues* a write (``StateStore.submit`` costs a queue append); one daemon thread
owns the write connection, drains everything queued so far and commits it as a
single transaction, so bursts of updates cost one fsync, and writes keep their
order. Reads happen once, at start-up, before the loop trades.

Adding a table (fill history, daily PnL, ...): append one SQL script to
``MIGRATIONS`` (never edit an existing entry: databases in the field have already
run it) and write through ``submit(lambda conn: conn.execute(...))``. The schema
version is SQLite's ``user_version``; a database newer than this program is refused.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

DB_NAME = "state.sqlite3"
LOCK_NAME = "lock"

# Schema history, oldest first. Entry i brings a database from version i to i + 1.
MIGRATIONS: tuple[str, ...] = (
    # 1: small documents by key (control state, kill-switch baselines), and the audit trail.
    """
    CREATE TABLE kv (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        ts REAL NOT NULL,
        entry TEXT NOT NULL
    );
    """,
    # 2: the fill and funding history behind GET /fills and GET /pnl/daily (history/store.py).
    """
    CREATE TABLE fills (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        ts REAL NOT NULL,
        day TEXT NOT NULL,
        trade_id TEXT NOT NULL,
        client_order_id TEXT NOT NULL,
        venue_order_id TEXT NOT NULL,
        side TEXT NOT NULL,
        position_side TEXT,
        price REAL NOT NULL,
        qty REAL NOT NULL,
        commission REAL NOT NULL,
        commission_asset TEXT NOT NULL,
        liquidity TEXT NOT NULL,
        realized_pnl REAL NOT NULL,
        request_id TEXT,
        UNIQUE (trade_id, client_order_id)
    );
    CREATE INDEX fills_ts ON fills (ts);
    CREATE TABLE funding (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        ts REAL NOT NULL,
        day TEXT NOT NULL,
        paid_usdt REAL NOT NULL,
        estimated INTEGER NOT NULL
    );
    """,
    # 3: per-day totals of the fills the retention folded away (history/store.py), so
    # GET /pnl/daily keeps every day while the fills table keeps only the recent ones.
    """
    CREATE TABLE fill_days (
        day TEXT PRIMARY KEY,
        realized_pnl REAL NOT NULL,
        fees REAL NOT NULL,
        fills INTEGER NOT NULL
    );
    """,
)

Write = Callable[[sqlite3.Connection], object]


class StateError(Exception):
    """The state directory cannot be used; the message is one line for the operator."""


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=5.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    # FULL: a commit is on disk before the writer moves on (it is off the loop anyway).
    conn.execute("PRAGMA synchronous=FULL")
    return conn


@contextlib.contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _migrate(conn: sqlite3.Connection, where: Path) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > len(MIGRATIONS):
        raise StateError(
            f"{where}: schema version {version} is newer than this program knows "
            f"({len(MIGRATIONS)}); use a newer hedgegrid_ops or another --state-dir"
        )
    for number in range(version, len(MIGRATIONS)):
        with _transaction(conn):
            for statement in filter(str.strip, MIGRATIONS[number].split(";")):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number + 1}")


class StateStore:
    """Opens (or creates) a state directory and owns its writer thread.

    ``open`` checks the database before anything trades: a file that is not a
    database, fails SQLite's integrity check, or is locked by another running
    process raises ``StateError`` with one line.
    """

    def __init__(self, directory: Path, conn: sqlite3.Connection, lock_fd: int) -> None:
        self.directory = directory
        self.path = directory / DB_NAME
        self._conn = conn
        self._lock_fd = lock_fd
        # A Write, a barrier Event (set once everything before it is committed) or None (stop).
        self._queue: queue.SimpleQueue[Write | threading.Event | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.last_error: str | None = None
        self.writes_committed = 0
        self.write_failures = 0
        self.on_error: Callable[[str], None] | None = None

    # ------------------------------------------------------------------ opening

    @classmethod
    def open(cls, directory: Path) -> StateStore:
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StateError(f"--state-dir {directory}: cannot create: {exc.strerror}") from None
        lock_fd = cls._lock(directory)
        path = directory / DB_NAME
        try:
            conn = _connect(path)
            ok = conn.execute("PRAGMA quick_check").fetchone()[0]
            if ok != "ok":
                raise StateError(f"{path}: database is damaged ({ok}); restore it or move it away")
            _migrate(conn, path)
        except sqlite3.Error as exc:
            os.close(lock_fd)
            raise StateError(
                f"{path}: unreadable state ({exc}); restore it or move it away"
            ) from None
        except StateError:
            os.close(lock_fd)
            raise
        return cls(directory, conn, lock_fd)

    @staticmethod
    def _lock(directory: Path) -> int:
        """One process per state directory: two runs writing the same state would interleave."""
        lock_path = directory / LOCK_NAME
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StateError(
                f"--state-dir {directory}: cannot open {LOCK_NAME}: {exc.strerror}"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise StateError(
                f"--state-dir {directory} is in use by another running hedgegrid_ops"
            ) from None
        return fd

    # ------------------------------------------------------------------ reading (start-up only)

    def read(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run a query on the calling thread. Start-up and tests only: never on the loop."""
        try:
            return self._conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StateError(f"{self.path}: unreadable state ({exc})") from None

    def get(self, key: str) -> str | None:
        rows = self.read("SELECT value FROM kv WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    # ------------------------------------------------------------------ writing (any thread)

    def start(self) -> None:
        """Start the writer thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._write_loop, name="hedgegrid-state-writer", daemon=True
            )
            self._thread.start()

    def submit(self, write: Write) -> None:
        """Queue ``write(conn)``; it runs on the writer thread inside a transaction.

        Costs a queue append on the caller's thread: safe to call on the event loop.
        """
        if self._closed:
            return
        self._queue.put(write)

    def put(self, key: str, value: str) -> None:
        """Queue an upsert of one document (the newest queued value wins)."""
        now = time.time()
        self.submit(
            lambda conn: conn.execute(
                "INSERT INTO kv (key, value, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value, "
                "updated_at = excluded.updated_at",
                (key, value, now),
            )
        )

    def append_audit(self, entry: str) -> None:
        """Queue one audit record (a JSON line); records keep their order."""
        now = time.time()
        self.submit(
            lambda conn: conn.execute("INSERT INTO audit (ts, entry) VALUES (?, ?)", (now, entry))
        )

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything queued so far is committed (tests, shutdown). Not on the loop."""
        if self._closed:
            return True
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Commit what is queued, stop the writer and release the directory."""
        if self._closed:
            return
        self._closed = True
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)
        else:
            self._drain_now()
        with contextlib.suppress(sqlite3.Error):
            self._conn.close()
        with contextlib.suppress(OSError):
            os.close(self._lock_fd)

    def _drain_now(self) -> None:
        self._queue.put(None)
        self._write_batches()

    def _write_loop(self) -> None:
        self._write_batches()

    def _write_batches(self) -> None:
        """Commit everything queued so far as one transaction, repeatedly, until ``None``."""
        while True:
            batch: list[Write] = []
            barriers: list[threading.Event] = []
            item = self._queue.get()
            while item is not None:
                if isinstance(item, threading.Event):
                    barriers.append(item)
                else:
                    batch.append(item)
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if batch:
                self._commit(batch)
            for barrier in barriers:
                barrier.set()
            if item is None:
                return

    def _commit(self, batch: list[Write]) -> None:
        if self._run(batch):
            return
        if len(batch) > 1:  # one bad write must not take the others down with it
            for write in batch:
                self._run([write])

    def _run(self, batch: list[Write]) -> bool:
        try:
            with _transaction(self._conn):
                for write in batch:
                    write(self._conn)
        except Exception as exc:  # a full disk must not kill the writer: report and go on
            self.write_failures += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            if self.on_error is not None:
                with contextlib.suppress(Exception):
                    self.on_error(self.last_error)
            return False
        self.writes_committed += len(batch)
        self.last_error = None
        return True

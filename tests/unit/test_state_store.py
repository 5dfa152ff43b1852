"""The state directory: create, reopen, refuse damaged or foreign state, write off-thread."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import msgspec
import pytest

from hedgegrid_ops.state import (
    ControlRecord,
    KillSwitchRecord,
    StateError,
    StateSaver,
    StateStore,
    TripRecord,
    load_saved,
)
from hedgegrid_ops.state.store import DB_NAME, MIGRATIONS


def test_fresh_directory_is_created_empty_and_at_the_current_schema(tmp_path: Path) -> None:
    store = StateStore.open(tmp_path / "state")
    try:
        assert load_saved(store).control is None
        assert store.read("PRAGMA user_version")[0][0] == len(MIGRATIONS)
        assert store.read("PRAGMA journal_mode")[0][0] == "wal"
    finally:
        store.close()


def test_documents_survive_a_reopen(tmp_path: Path) -> None:
    store = StateStore.open(tmp_path)
    store.start()
    saver = StateSaver(store)
    control = ControlRecord("halted", "max_drawdown: measured 0.12 > limit 0.1", 0.3, 1.0)
    trip = TripRecord("max_drawdown", 0.12, 0.1, "max_drawdown: ...", 2.0)
    kill = KillSwitchRecord(10_000.0, 10_400.0, trip, {"max_drawdown": 1}, 3.0)
    saver.save_control(control)
    saver.save_kill_switch(kill)
    store.close()

    again = StateStore.open(tmp_path)
    try:
        saved = load_saved(again)
        assert saved.control == control
        assert saved.kill_switch == kill
    finally:
        again.close()


def test_writes_run_on_the_writer_thread_in_order(tmp_path: Path) -> None:
    store = StateStore.open(tmp_path)
    store.start()
    threads: set[str] = set()
    try:
        for n in range(200):
            store.append_audit(f'{{"n": {n}}}')
        store.submit(lambda _c: threads.add(threading.current_thread().name))
        assert store.flush()
        rows = store.read("SELECT entry FROM audit ORDER BY id")
        assert [msgspec.json.decode(r[0])["n"] for r in rows] == list(range(200))
        assert threads == {"hedgegrid-state-writer"}
    finally:
        store.close()


def test_an_unchanged_document_is_not_written_again(tmp_path: Path) -> None:
    store = StateStore.open(tmp_path)
    store.start()
    saver = StateSaver(store)
    try:
        saver.save_control(ControlRecord("paused", "stop by x", 0.5, 1.0))
        saver.save_control(ControlRecord("paused", "stop by x", 0.5, 2.0))  # only saved_at differs
        saver.save_control(ControlRecord("paused", "stop by x", 0.4, 3.0))
        assert store.flush()
        assert store.writes_committed == 2
        assert load_saved(store).control == ControlRecord("paused", "stop by x", 0.4, 3.0)
    finally:
        store.close()


def test_a_failing_write_is_reported_and_the_others_still_commit(tmp_path: Path) -> None:
    store = StateStore.open(tmp_path)
    errors: list[str] = []
    store.on_error = errors.append
    store.start()
    try:
        store.put("a", "1")
        store.submit(lambda conn: conn.execute("INSERT INTO no_such_table VALUES (1)"))
        store.put("b", "2")
        assert store.flush()
        assert (store.get("a"), store.get("b")) == ("1", "2")
        assert store.write_failures >= 1 and "no_such_table" in errors[-1]
    finally:
        store.close()


def test_not_a_database_is_one_line(tmp_path: Path) -> None:
    (tmp_path / DB_NAME).write_bytes(b"this is not sqlite at all, just text\n" * 100)
    with pytest.raises(StateError) as info:
        StateStore.open(tmp_path)
    message = str(info.value)
    assert "\n" not in message and DB_NAME in message and "unreadable state" in message


def test_damaged_document_is_one_line(tmp_path: Path) -> None:
    store = StateStore.open(tmp_path)
    bad = '{"trading_state": "sideways", "reason": "", "throttle": 1, "saved_at": 0}'
    store.put("control", bad)
    store.close()
    again = StateStore.open(tmp_path)
    try:
        with pytest.raises(StateError, match="saved 'control' is not valid") as info:
            load_saved(again)
        assert "\n" not in str(info.value)
    finally:
        again.close()


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / DB_NAME)
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 5}")
    conn.close()
    with pytest.raises(StateError, match="newer than this program knows"):
        StateStore.open(tmp_path)


def test_two_processes_cannot_share_a_state_directory(tmp_path: Path) -> None:
    first = StateStore.open(tmp_path)
    try:
        with pytest.raises(StateError, match="in use by another running"):
            StateStore.open(tmp_path)
    finally:
        first.close()
    StateStore.open(tmp_path).close()  # released on close


def test_unwritable_location_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StateError, match="cannot create"):
        StateStore.open(blocker / "state")


def test_migrations_are_applied_once_and_in_order(tmp_path: Path) -> None:
    StateStore.open(tmp_path).close()
    store = StateStore.open(tmp_path)  # second open: nothing to migrate, tables intact
    try:
        tables = {r[0] for r in store.read("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"kv", "audit"} <= tables
    finally:
        store.close()

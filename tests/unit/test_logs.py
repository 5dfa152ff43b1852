"""Log sinks never block each other, fail loudly, rotate, reopen, and confirm audit lines."""

from __future__ import annotations

import datetime
import os
import threading
import time
from pathlib import Path

import orjson
import pytest

from hedgegrid_ops import logs
from hedgegrid_ops.logs import (
    AUDIT,
    LogSetupError,
    configure_logging,
    get_logger,
    receipts,
    reopen_logs,
    shutdown_logging,
    sink_problems,
    sink_stats,
)


def _lines(path: Path) -> list[dict]:
    return [orjson.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def test_a_stdout_nobody_reads_drops_its_lines_but_never_the_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logs, "STDOUT_QUEUE_LINES", 50)
    read_end, write_end = os.pipe()  # nobody ever reads read_end: the pipe fills at ~64 KB
    try:
        configure_logging(tmp_path, stdout_fd=write_end)
        log = get_logger("test")
        padding = "x" * 1000
        for i in range(3000):  # ~3 MB: far past the pipe and the stdout queue
            log.info("tick", i=i, padding=padding)
        shutdown_logging(timeout=0.5)
    finally:
        os.close(read_end)
        os.close(write_end)
    assert [x["i"] for x in _lines(tmp_path / "trading.log")] == list(range(3000))
    stdout = next(s for s in sink_stats_snapshot if s.name == "stdout")
    assert stdout.dropped > 2000 and stdout.written < 1000


sink_stats_snapshot: list = []


@pytest.fixture(autouse=True)
def _keep_stats(monkeypatch: pytest.MonkeyPatch):
    """``shutdown_logging`` forgets the sinks; keep their stats for the assertions."""
    real = logs.shutdown_logging

    def keeping(timeout: float = 2.0) -> None:
        sink_stats_snapshot[:] = sink_stats()
        real(timeout)

    monkeypatch.setattr(logs, "shutdown_logging", keeping)
    globals()["shutdown_logging"] = keeping
    yield
    globals()["shutdown_logging"] = real
    real()


def test_a_failing_file_is_reported_and_the_others_carry_on(tmp_path: Path) -> None:
    (tmp_path / "audit.log").symlink_to("/dev/full")  # every write: ENOSPC
    configure_logging(tmp_path, stdout=False)
    with receipts() as got:
        get_logger("audit", AUDIT).info("control_action", action="stop")
    assert len(got) == 1 and got[0].result(timeout=5) is False
    get_logger("test").info("still_trading")
    problems = sink_problems()
    assert problems == ["log file audit.log is failing: ENOSPC: No space left on device"]
    shutdown_logging()
    events = [x["event"] for x in _lines(tmp_path / "trading.log")]
    assert events == ["control_action", "still_trading"]  # the audit copy still got here
    audit = next(s for s in sink_stats_snapshot if s.name == "audit.log")
    assert audit.errors >= 1 and audit.dropped >= 1 and audit.failing is not None


def test_audit_receipts_resolve_once_the_line_is_on_disk(tmp_path: Path) -> None:
    configure_logging(tmp_path, stdout=False)
    with receipts() as got:
        get_logger("audit", AUDIT).info("control_action", action="flatten")
    assert got[0].result(timeout=5) is True
    assert [x["action"] for x in _lines(tmp_path / "audit.log")] == ["flatten"]
    with receipts() as none:
        get_logger("test").info("not_audited")  # no confirmed sink on this stream
    assert none == []
    shutdown_logging()


def test_files_rotate_by_size_keeping_the_configured_count(tmp_path: Path) -> None:
    configure_logging(tmp_path, stdout=False, max_bytes=4000, backups=2)
    log = get_logger("test")
    for i in range(200):
        log.info("line", i=i, pad="y" * 80)
    shutdown_logging()
    names = sorted(p.name for p in tmp_path.glob("trading.log*"))
    assert names == ["trading.log", "trading.log.1", "trading.log.2"]
    kept = [
        x["i"] for n in ("trading.log.2", "trading.log.1", "trading.log")
        for x in _lines(tmp_path / n)
    ]  # fmt: skip
    assert kept == list(range(kept[0], 200))  # the newest lines, in order, none lost inside
    assert all((tmp_path / n).stat().st_size <= 4000 + 200 for n in names)


def test_reopen_follows_an_external_rotation(tmp_path: Path) -> None:
    configure_logging(tmp_path, stdout=False)
    log = get_logger("test")
    log.info("before")
    deadline = time.monotonic() + 5
    while not _lines(tmp_path / "trading.log") and time.monotonic() < deadline:
        time.sleep(0.01)  # the writer thread lands the line on its own schedule
    os.rename(tmp_path / "trading.log", tmp_path / "trading.log.old")  # as logrotate does
    reopen_logs()  # what SIGHUP calls
    log.info("after")
    shutdown_logging()
    assert [x["event"] for x in _lines(tmp_path / "trading.log.old")] == ["before"]
    assert [x["event"] for x in _lines(tmp_path / "trading.log")] == ["after"]


def test_unusual_values_never_break_a_log_call(tmp_path: Path) -> None:
    configure_logging(tmp_path, stdout=False)
    get_logger("test").info("odd", huge=10**30, text="bad \udcff byte", nested={1: object()})
    shutdown_logging()
    (line,) = _lines(tmp_path / "trading.log")
    assert line["huge"] == str(10**30) and line["text"] == "bad \ufffd byte"


def test_a_bad_directory_is_one_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(LogSetupError, match=r"cannot write logs in .*file: EEXIST"):
        configure_logging(blocker)
    with pytest.raises(LogSetupError, match="log level must be one of"):
        configure_logging(tmp_path, level="LOUD")


def test_access_lines_have_the_shape_of_every_other_line(tmp_path: Path) -> None:
    configure_logging(tmp_path, stdout=False)
    get_logger("api").info("http_request", status=200)  # through structlog
    logs.access_line({"status": 200, "path": "/status", "odd": object()})
    shutdown_logging()
    [via_structlog] = _lines(tmp_path / "trading.log")
    [fast] = _lines(tmp_path / "api_access.log")
    assert set(fast) - {"path", "odd"} == set(via_structlog)
    for line in (via_structlog, fast):
        assert line["timestamp"].endswith("Z") and len(line["timestamp"]) == 27
        written = datetime.datetime.fromisoformat(line["timestamp"])
        assert abs((datetime.datetime.now(datetime.UTC) - written).total_seconds()) < 5
        assert (line["event"], line["logger"], line["level"]) == ("http_request", "api", "info")
    assert fast["odd"].startswith("<object")  # unserialisable values become text


@pytest.mark.parametrize("confirm", [False, True])
def test_no_line_is_lost_whether_the_writer_is_polling_or_asleep(
    tmp_path: Path, confirm: bool
) -> None:
    """Bursts from several threads, with pauses long enough for the writer to fall asleep
    between them: a put that races the writer going to sleep must still be written."""
    sink = logs.FileSink(tmp_path / "race.log", 0, 0, confirm=confirm)
    sink.start()

    def burst(who: int) -> None:
        for n in range(40):
            for k in range(25):
                sink.put(orjson.dumps({"who": who, "n": n, "k": k}) + b"\n")
            if n % 8 == 0:
                time.sleep(0.15)  # past the linger: the writer goes to sleep

    threads = [threading.Thread(target=burst, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sink.close(5.0)
    lines = _lines(tmp_path / "race.log")
    assert len(lines) == 4 * 40 * 25
    assert len({(x["who"], x["n"], x["k"]) for x in lines}) == len(lines)
    assert sink.stats.written == len(lines) and sink.stats.dropped == 0

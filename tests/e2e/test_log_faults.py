"""Log faults on the real program: a stdout nobody reads, a failing log file, SIGHUP.

None of them may stop trading or the audit trail; each is visible in /health or
/metrics; a duration still ends and SIGTERM still exits 0.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support.program import (
    ROOT,
    nautilus_log_lines,
    program,
    program_env,
    run_program,
    running_program,
)

pytestmark = pytest.mark.e2e


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _http(
    url: str, method: str = "GET", body: bytes | None = None
) -> tuple[int, dict[str, str], bytes]:
    headers = {"Content-Type": "application/json"} if body is not None else {}
    req = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def _wait_for(what: str, check: Any, timeout: float = 45.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
        except (OSError, urllib.error.URLError):
            value = None
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _metric(text: str, prefix: str) -> float:
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _bars(api: str) -> int:
    return int(orjson.loads(_http(f"{api}/status")[2])["counters"]["bars_processed"])


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(x) for x in path.read_text().splitlines()]


def test_a_stdout_nobody_reads_never_stops_trading_auditing_or_exit(tmp_path: Path) -> None:
    port = _free_port()
    log_dir = tmp_path / "logs"
    args = ("--enable-ops", "--api-port", str(port), "--prometheus-port", "0")
    proc = subprocess.Popen(
        program("run", *args, "--speed", "600", "--duration", "10", "--log-dir", str(log_dir)),
        cwd=ROOT,
        env=program_env(),
        stdout=subprocess.PIPE,  # never read: the pipe fills after ~64 KB
        stderr=subprocess.DEVNULL,
    )
    api = f"http://127.0.0.1:{port}"
    try:
        _wait_for("the API", lambda: _http(f"{api}/health")[0] in (200, 503))
        dropped = (
            'hedgegrid_log_lines_dropped_total{instrument="BTCUSDT-PERP.BINANCE",sink="stdout"}'
        )
        _wait_for(
            "stdout lines to be dropped",
            lambda: _metric(_http(f"{api}/metrics")[2].decode(), dropped) > 0,
        )
        before = _bars(api)
        status, headers, body = _http(f"{api}/stop", "POST")
        assert status == 200 and headers["X-Audit"] == "recorded", body
        audit = _jsonl(log_dir / "audit.log")
        assert audit[-1]["action"] == "stop" and audit[-1]["request_id"] == headers["X-Request-ID"]
        _wait_for("bars to keep coming", lambda: _bars(api) > before + 5)
        metrics = _http(f"{api}/metrics")[2].decode()
        stdout_got = _metric(metrics, dropped.replace("dropped", "written"))
        file_got = _metric(
            metrics, dropped.replace("dropped", "written").replace("stdout", "trading.log")
        )
        assert file_got > stdout_got + 100  # the file has what the stuck pipe could not take
        assert proc.wait(timeout=30) == 0  # --duration still ends
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()
    events = [x["event"] for x in _jsonl(log_dir / "trading.log")]
    assert "shutdown" in events and "ops_stopped" in events  # the files saw the very end


def test_a_failing_log_file_is_degraded_while_trading_and_audit_go_on(tmp_path: Path) -> None:
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    (log_dir / "trading.log").symlink_to("/dev/full")  # every write: no space left
    with running_program(tmp_path, "--speed", "60") as svc:
        api = svc.api_url

        def degraded() -> dict[str, Any] | None:
            status, _, body = _http(f"{api}/health")
            health = orjson.loads(body)
            return health if status == 503 and "trading.log" in health.get("reason", "") else None

        health = _wait_for("/health to name the failing file", degraded)
        assert health["status"] == "degraded"
        assert "trading.log is failing: ENOSPC" in health["reason"]
        before = _bars(api)
        _wait_for("bars to keep coming", lambda: _bars(api) > before + 3)
        status, headers, _ = _http(f"{api}/set-throttle", "POST", b'{"throttle": 0.5}')
        assert status == 200 and headers["X-Audit"] == "recorded"
        audit = _jsonl(log_dir / "audit.log")
        assert audit[-1]["action"] == "set_throttle"
        assert svc.stop() == 0


def test_sighup_reopens_the_log_files(tmp_path: Path) -> None:
    with running_program(tmp_path) as svc:
        trading = svc.log_dir / "trading.log"
        _wait_for("the first lines", lambda: trading.stat().st_size > 0)
        trading.rename(svc.log_dir / "trading.log.1")  # what logrotate does first
        svc.proc.send_signal(signal.SIGHUP)
        _http(f"{svc.api_url}/stop", "POST")  # a line to write after the reopen
        _wait_for("a new trading.log", lambda: trading.exists() and trading.stat().st_size > 0)
        assert svc.proc.poll() is None  # still running
        assert svc.stop() == 0
    assert any(x["event"] == "control_action" for x in _jsonl(trading))


def test_nautilus_log_rotates_by_size_like_ours(tmp_path: Path) -> None:
    """``--log-max-mb``/``--log-backups`` bound Nautilus's own log too.

    At ``--speed 60`` Nautilus writes about 15 MB a minute; before it was rotated its
    one file grew without bound while ours stayed within budget.
    """
    log_dir = tmp_path / "logs"
    args = ("run", "--duration", "20", "--speed", "60", "--log-dir", str(log_dir))
    limits = ("--log-max-mb", "1", "--log-backups", "1")
    proc = run_program(*args, *limits, timeout=90)
    assert proc.returncode == 0, proc.stderr[-2000:]
    files = sorted(log_dir.glob("nautilus_*.jsonl"))
    # One full backup and the current file: the older ones were deleted.
    assert len(files) == 2, files
    assert all(path.stat().st_size <= 1024 * 1024 for path in files)
    assert files[0].stat().st_size > 1024 * 1024 * 0.9
    assert nautilus_log_lines(log_dir)[-1]["message"] == "DISPOSED"

"""``make rehearse``: exchange + live-mode program from one command, stopped by one signal."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.support.program import ROOT, program_env
from tests.tools import stop_process

pytestmark = pytest.mark.e2e


def _get(url: str, key: str | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(url, headers={"X-API-Key": key} if key else {})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _pump(stream, sink: list[str]) -> None:
    for line in stream:
        sink.append(line)


def test_rehearsal_runs_live_mode_and_stops_both_on_sigterm(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "hedgegrid_ops.rehearse", "--speed", "6", "--",
         "--api-port", "0", "--prometheus-port", "0", "--log-dir", str(tmp_path / "logs")],
        cwd=ROOT,
        env=program_env(),  # no HEDGEGRID_API_KEY: a control key is generated and shown once
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    out: list[str] = []
    err: list[str] = []
    threading.Thread(target=_pump, args=(proc.stdout, out), daemon=True).start()
    threading.Thread(target=_pump, args=(proc.stderr, err), daemon=True).start()
    try:
        deadline = time.monotonic() + 90
        listening = None
        while listening is None and time.monotonic() < deadline and proc.poll() is None:
            listening = next((json.loads(ln) for ln in list(out) if '"ops_listening"' in ln), None)
            time.sleep(0.1)
        assert listening is not None, "".join(err)[-2000:]
        key_lines = [ln for ln in err if "control API key for this rehearsal" in ln]
        assert len(key_lines) == 1
        control_key = key_lines[0].rsplit(" ", 1)[1].strip()
        exchange_line = next(ln for ln in err if "local exchange listening on" in ln)
        exchange_url = exchange_line.split(" on ", 1)[1].split(" ", 1)[0]

        assert _get(listening["api"] + "/status")[0] == 401  # the control key is required
        deadline = time.monotonic() + 60
        status: dict = {}
        while time.monotonic() < deadline:
            code, status = _get(listening["api"] + "/status", control_key)
            if code == 200 and status["counters"]["orders_submitted_buy"] > 0:
                break
            time.sleep(0.5)
        assert status["counters"]["orders_submitted_buy"] > 0, status
        with urllib.request.urlopen(exchange_url + "/fapi/v1/ping", timeout=5) as resp:
            assert resp.status == 200

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, "".join(err)[-2000:]
    finally:
        stop_process(proc)
    time.sleep(0.5)
    summary = json.loads([ln for ln in out if ln.strip()][-1])
    assert summary["event"] == "run_summary"
    with pytest.raises(OSError):  # the exchange is gone too
        urllib.request.urlopen(exchange_url + "/fapi/v1/ping", timeout=2)
    assert control_key not in "".join(out)  # shown once, on stderr only

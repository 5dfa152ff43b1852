"""Slow clients against the real program: a slow-header flood and a half-sent body.

The issue's attack: thousands of loopback connections trickling headers used to
exhaust descriptors and lock out /health, /metrics and emergency /flatten; one client
with a half-sent body held SIGTERM for 62 s. Now the connection cap drops the oldest
idle connection for each newcomer, the header timeout drops tricklers, the body
timeout ends a stalled body, and shutdown waits at most 2 s for requests in flight.
The listen queue is deep enough that the flood's reconnects wait in it instead of
having SYNs dropped: a dropped SYN cost a probe a 1 s (or 3 s) retransmission, which
was every probe over 1 s before. Loopback only, bounded in count (6,000 attackers,
more than the 4,096-connection cap, so the eviction really runs) and time (14 s).
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import orjson
import pytest

from hedgegrid_ops.ops.settings import OpsSettings
from tests.support.polling import wait_until
from tests.support.program import ROOT, running_program

pytestmark = pytest.mark.e2e

ATTACKERS = 6000
ATTACK_SECONDS = 14.0
MAX_CONNECTIONS = OpsSettings.max_connections  # the default cap per listener
PROBE_TIMEOUT = 10.0  # "answered at all"; the bar is 1 s for every probe


def _proc_fds(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


def _proc_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _timed(url: str, body: bytes | None = None) -> tuple[int, float]:
    headers = {"Content-Type": "application/json"} if body is not None else {}
    req = urllib.request.Request(url, data=body, headers=headers)
    started = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=PROBE_TIMEOUT) as resp:
            resp.read()
            status = resp.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    return status, time.monotonic() - started


@pytest.mark.serial
def test_a_slow_header_flood_leaves_health_and_flatten_answering(tmp_path: Path) -> None:
    with running_program(tmp_path) as svc:
        pid = svc.proc.pid
        api = svc.api_url
        port = int(api.rsplit(":", 1)[1])
        # healthy first: before the first bar /health is 503 by design (no data yet)
        wait_until(lambda: _timed(f"{api}/health")[0], lambda code: code == 200, timeout=60)
        fds_before, rss_before = _proc_fds(pid), _proc_rss_kb(pid)
        attacker = subprocess.Popen(
            [sys.executable, "-m", "tests.e2e.slowloris", str(port), str(ATTACKERS),
             str(ATTACK_SECONDS)],
            cwd=ROOT, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        peak = {"fds": 0, "rss": 0}
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                peak["fds"] = max(peak["fds"], _proc_fds(pid))
                peak["rss"] = max(peak["rss"], _proc_rss_kb(pid))
                time.sleep(0.1)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        probes: list[tuple[str, int, float]] = []
        try:
            time.sleep(3.0)  # let the flood build up past the connection cap
            while attacker.poll() is None and len(probes) < 40:
                probes.append(("health", *_timed(f"{api}/health")))
                probes.append(("flatten", *_timed(f"{api}/flatten", b'{"side": "both"}')))
                time.sleep(0.4)
            out, _ = attacker.communicate(timeout=60)
        finally:
            stop.set()
            sampler.join()
            if attacker.poll() is None:
                attacker.kill()
        stats = orjson.loads(out)
        evicted = _metric_value(f"{api}/metrics", "hedgegrid_http_connections_evicted_total")
        seconds = sorted(round(p[2], 3) for p in probes)
        print(f"slowloris: {stats}, evicted {evicted}, probes {len(probes)}, "
              f"latencies {seconds}, fds {fds_before}->{peak['fds']}, "
              f"rss {rss_before}->{peak['rss']} kB")  # fmt: skip

        assert stats["opened"] > ATTACKERS  # the flood really ran (and reconnected)
        assert evicted > 0  # the cap was reached and defended
        assert len(probes) >= 10
        assert all(status == 200 for _, status, _ in probes), probes
        # Every probe answered within the 1 s. No probe's SYN is dropped any more
        # (a dropped SYN's 1 s retransmission was every probe over 1 s before). The bar
        # needs the 2-core machine to itself: with another test file beside it (load
        # 6-9) one or two probes of 40 waited 1.2-1.9 s for CPU, so the test is
        # `serial` and make test runs it alone. docs/hardening.md has the figures.
        assert max(took for _, _, took in probes) < 1.0, seconds
        assert peak["fds"] - fds_before <= 2 * MAX_CONNECTIONS + 64
        assert peak["rss"] - rss_before < 128 * 1024
        assert _timed(f"{api}/health")[0] == 200


def _metric_value(url: str, name: str) -> float:
    with urllib.request.urlopen(url, timeout=5) as resp:
        text = resp.read().decode()
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not exported")


def test_a_half_sent_body_does_not_hold_shutdown(tmp_path: Path) -> None:
    with running_program(tmp_path) as svc:
        port = int(svc.api_url.rsplit(":", 1)[1])
        stalled = socket.create_connection(("127.0.0.1", port))
        try:
            stalled.sendall(
                b"POST /flatten HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json"
                b'\r\nContent-Length: 1000\r\n\r\n{"side": '
            )
            time.sleep(0.5)
            sent = time.monotonic()
            svc.proc.send_signal(signal.SIGTERM)
            svc.proc.wait(timeout=30)
            elapsed = time.monotonic() - sent
        finally:
            stalled.close()
        assert svc.proc.returncode == 0
        # The issue measured 62 s; now the body timeout (5 s) and the shutdown wait (2 s)
        # bound it, plus the node's own stop.
        assert elapsed < 15, elapsed

"""Schemathesis (pinned in pyproject) fuzzes the real program from its own /openapi.json.

At least 1,000 requests, every check schemathesis has (no 5xx, status codes, content
types, response schemas, headers, auth), and the service must still be healthy after.
``/events`` is a WebSocket: plain HTTP fuzzing can only ever get its 426, so it is left
out here and tested by tests/unit/test_ops_events.py.
"""

from __future__ import annotations

import collections
import subprocess
import sys
import urllib.request
from pathlib import Path

import orjson
import pytest

from tests.support.program import running_program

pytestmark = pytest.mark.e2e

KEY = "schemathesis-key-0123456789abcdef0123"  # 36 characters
MIN_REQUESTS = 1000


def test_schemathesis_finds_nothing_and_the_service_stays_healthy(tmp_path: Path) -> None:
    st = Path(sys.executable).with_name("st")
    assert st.exists(), "schemathesis is a test dependency: make install"
    with running_program(
        tmp_path,
        "--post-budget",
        "1000000",  # the fuzzer is one client sending ~500 commands a minute
        env={"HEDGEGRID_API_KEY": KEY},
    ) as svc:
        proc = subprocess.run(
            [
                str(st),
                "run",
                f"{svc.api_url}/openapi.json",
                "--header",
                f"X-API-Key: {KEY}",
                "--checks",
                "all",
                "--exclude-path",
                "/events",
                "--max-examples",
                "150",
                "--seed",
                "20261130",
                "--no-color",
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
        )
        summary = proc.stdout[-3000:]
        assert proc.returncode == 0, summary
        assert " passed" in summary and "failed" not in summary.split("SUMMARY")[-1], summary
        with urllib.request.urlopen(f"{svc.api_url}/health", timeout=5) as resp:
            health = orjson.loads(resp.read())
        assert resp.status == 200 and health["status"] == "healthy", health
        assert svc.proc.poll() is None
    # Split on newlines only: fuzzed paths can hold U+2028 and friends, which JSON keeps
    # as they are and str.splitlines() would treat as line ends.
    raw = (svc.log_dir / "api_access.log").read_bytes().split(b"\n")
    statuses = collections.Counter(orjson.loads(line)["status"] for line in raw if line)
    assert sum(statuses.values()) >= MIN_REQUESTS, statuses
    assert not [s for s in statuses if s >= 500], statuses

"""docs/examples/health_check.sh against the real API app, and canned bodies for odd answers.

The script is what a Nagios/cron monitor runs, so its exit code is its whole API:
0 OK, 2 CRITICAL, 3 UNKNOWN. It needs bash, curl and jq; without them these tests skip,
unless HEDGEGRID_REQUIRE_TOOLS=1 (CI), where a missing tool fails.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest

from hedgegrid_ops.api import Health
from tests.support.canned import Canned, CannedServer
from tests.support.inprocess import make_snapshot, serve_ops
from tests.support.ports import free_port
from tests.tools import require_tool

pytestmark = pytest.mark.tools

SCRIPT = Path(__file__).resolve().parents[2] / "docs" / "examples" / "health_check.sh"


@pytest.fixture(autouse=True)
def _tools() -> None:
    for tool in ("bash", "curl", "jq"):
        require_tool(tool)


@dataclass
class Outcome:
    code: int
    out: str


async def check(*args: str, env: dict[str, str] | None = None) -> Outcome:
    # curl honours proxy variables; the tests talk to loopback directly.
    dropped = {"HEALTH_URL", "MAX_BAR_AGE", "http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"}
    base = {k: v for k, v in os.environ.items() if k not in dropped}
    proc = await asyncio.create_subprocess_exec(
        "bash",
        str(SCRIPT),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**base, "HEALTH_TIMEOUT": "5", **(env or {})},
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode is not None
    return Outcome(proc.returncode, out.decode())


def health(
    status: str = "healthy", bar_age: float | None = 5.0, reason: str | None = None
) -> bytes:
    """A /health body as the server encodes it (built from the api Struct)."""
    body = Health(
        status=status,  # type: ignore[arg-type]
        uptime=60.0,
        last_bar=None if bar_age is None else time.time() - bar_age,
        trading_state="running" if bar_age is not None else "starting",
        bar_age_seconds=bar_age,
        reason=msgspec.UNSET if reason is None else reason,
    )
    return msgspec.json.encode(body)


@asynccontextmanager
async def serving(status: int, body: bytes, **kw: Any) -> AsyncIterator[str]:
    """The /health URL of a server answering exactly ``body``."""
    async with CannedServer({("GET", "/health"): Canned(status, body, **kw)}) as server:
        yield server.url + "/health"


def test_script_is_executable_bash() -> None:
    assert SCRIPT.read_text().startswith("#!/usr/bin/env bash\n")
    assert os.access(SCRIPT, os.X_OK)


async def test_healthy_is_ok_with_the_bar_age(tmp_path: Path) -> None:
    async with serve_ops(tmp_path, snapshot=make_snapshot()) as ops:
        result = await check(ops.url + "/health")
    assert result.code == 0, result.out
    assert re.fullmatch(
        r"OK: strategy healthy \(running\), last bar \d+s ago \| bar_age=\d+s;;;0\n", result.out
    ), result.out


async def test_the_servers_verdict_is_final() -> None:
    # an old bar the node still calls healthy (its own --max-bar-age is larger) is OK
    async with serving(200, health(bar_age=500.0)) as url:
        result = await check(url)
    assert result.code == 0, result.out
    assert (
        result.out.strip() == "OK: strategy healthy (running), last bar 500s ago | bar_age=500s;;;0"
    )


async def test_degraded_from_the_real_server_is_critical_with_its_reason(tmp_path: Path) -> None:
    snap = make_snapshot(last_bar_time=time.time() - 400)
    async with serve_ops(tmp_path, snapshot=snap, max_bar_age=120.0) as ops:
        result = await check(ops.url + "/health")
    assert result.code == 2, result.out
    assert result.out.startswith(
        "CRITICAL: strategy is degraded (running): the last bar was processed 400s ago, "
        "more than the 120s allowed | bar_age=400s;;;0"
    )


async def test_down_without_any_bar_is_critical_not_an_unset_age(tmp_path: Path) -> None:
    async with serve_ops(tmp_path) as ops:  # no snapshot published yet
        down = await check(ops.url + "/health")
    assert down.code == 2
    assert down.out.strip() == (
        "CRITICAL: strategy is down (unknown): the strategy has not published any state yet"
    )
    async with serving(200, health(bar_age=None)) as url:
        healthy_no_bar = await check(url)
    assert healthy_no_bar.code == 0
    assert healthy_no_bar.out.strip() == "OK: strategy healthy (starting), no bar yet"


@pytest.mark.parametrize(
    ("status", "body", "content_type", "expected"),
    [
        (200, b"<html>hello</html>", "text/html", "did not answer with a JSON object (HTTP 200)"),
        (200, b"", "text/plain", "did not answer with a JSON object"),
        (200, b'"healthy"', "application/json", "did not answer with a JSON object"),
        (200, b'{"uptime": 1}', "application/json", "has no health status"),
        (200, b'{"status": "fine"}', "application/json", "has no health status"),
        (404, b'{"error": "not_found", "detail": "no route"}', "application/json", "HTTP 404"),
        (502, b"Bad Gateway", "text/plain", "(HTTP 502)"),
    ],
)
async def test_unusable_answers_are_unknown(
    status: int, body: bytes, content_type: str, expected: str
) -> None:
    async with serving(status, body, content_type=content_type) as url:
        result = await check(url)
    assert result.code == 3, result.out
    assert result.out.startswith("UNKNOWN: ")
    assert expected in result.out


async def test_unreachable_is_unknown() -> None:
    url = f"http://127.0.0.1:{free_port()}/health"
    result = await check(url)
    assert result.code == 3
    assert result.out.startswith(f"UNKNOWN: cannot reach {url}: ")


async def test_timeout_is_unknown() -> None:
    async with serving(200, health(), delay=3.0) as url:
        result = await check(url, env={"HEALTH_TIMEOUT": "1"})
    assert result.code == 3, result.out
    assert "cannot reach" in result.out


async def test_url_from_the_environment() -> None:
    async with serving(200, health(bar_age=7.0)) as url:
        result = await check(env={"HEALTH_URL": url})
    assert result.code == 0, result.out
    assert "last bar 7s ago" in result.out


async def test_default_url_is_localhost_8080() -> None:
    """Checked without touching port 8080 (another service may use it): a canned server
    acts as curl's HTTP proxy and sees which URL the script asked for."""
    async with CannedServer({("GET", "/health"): Canned(200, health())}) as proxy:
        result = await check(env={"http_proxy": proxy.url, "no_proxy": "", "NO_PROXY": ""})
    assert result.code == 0, result.out
    assert proxy.asked == [("GET", "localhost:8080", "/health")]

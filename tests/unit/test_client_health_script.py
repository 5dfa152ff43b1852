"""docs/examples/health_check.sh against a real HTTP server serving canned /health bodies.

The script is what a Nagios/cron monitor runs, so its exit code is its whole API:
0 OK, 2 CRITICAL, 3 UNKNOWN. It needs bash, curl and jq; without them these tests skip,
unless HEDGEGRID_REQUIRE_TOOLS=1 (CI), where a missing tool fails.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.tools import require_tool
from tests.unit.test_client_fakes import FakeHedgeGrid, health_body, unused_port

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


async def serve(server: FakeHedgeGrid, status: int, body: dict | bytes, **kw: str) -> str:
    server.can("GET", "/health", status, body, **kw)
    return server.url + "/health"


def test_script_is_executable_bash() -> None:
    assert SCRIPT.read_text().startswith("#!/usr/bin/env bash\n")
    assert os.access(SCRIPT, os.X_OK)


async def test_fresh_bar_is_ok() -> None:
    async with FakeHedgeGrid() as server:
        result = await check(await serve(server, 200, health_body(bar_age=7.0)))
    assert result.code == 0, result.out
    assert result.out.startswith("OK: strategy healthy (running), last bar 7s ago (max 120s)")
    assert "| bar_age=7s;;120;0" in result.out


async def test_stale_bar_is_critical() -> None:
    async with FakeHedgeGrid() as server:
        url = await serve(server, 200, health_body(bar_age=500.0))
        result = await check(url)
        lenient = await check(url, "600")
    assert result.code == 2, result.out
    assert result.out.startswith("CRITICAL: no bar for 500s (max 120s)")
    assert lenient.code == 0, lenient.out


async def test_age_from_last_bar_when_the_server_gives_no_bar_age() -> None:
    async with FakeHedgeGrid() as server:
        url = await serve(server, 200, health_body(bar_age=300.0, include_bar_age=False))
        stale = await check(url, "120")
        fine = await check(url, "400")
    assert stale.code == 2, stale.out
    assert "no bar for 300s" in stale.out or "no bar for 301s" in stale.out
    assert fine.code == 0, fine.out


async def test_degraded_503_is_critical_with_the_reason() -> None:
    body = health_body("degraded", bar_age=400.0, reason="no bar for 400s (max 120s)")
    async with FakeHedgeGrid() as server:
        result = await check(await serve(server, 503, body))
    assert result.code == 2, result.out
    assert result.out.strip() == (
        "CRITICAL: strategy is degraded (running): no bar for 400s (max 120s)"
    )


async def test_down_without_any_bar_is_critical_not_an_unset_age() -> None:
    body = health_body("down", bar_age=None, trading_state="starting", reason="no snapshot yet")
    async with FakeHedgeGrid() as server:
        down = await check(await serve(server, 503, body))
        healthy_no_bar = await check(await serve(server, 200, health_body(bar_age=None)))
    assert down.code == 2 and "no snapshot yet" in down.out
    assert healthy_no_bar.code == 2
    assert healthy_no_bar.out.strip() == "CRITICAL: no bar processed yet"


@pytest.mark.parametrize(
    ("status", "body", "content_type", "expected"),
    [
        (200, b"<html>hello</html>", "text/html", "did not answer with a JSON object (HTTP 200)"),
        (200, b"", "text/plain", "did not answer with a JSON object"),
        (200, b'"healthy"', "application/json", "did not answer with a JSON object"),
        (200, b'{"uptime": 1}', "application/json", "has no status"),
        (404, b'{"error": "not_found", "detail": "no route"}', "application/json", "HTTP 404"),
        (502, b"Bad Gateway", "text/plain", "(HTTP 502)"),
    ],
)
async def test_unusable_answers_are_unknown(
    status: int, body: bytes, content_type: str, expected: str
) -> None:
    async with FakeHedgeGrid() as server:
        result = await check(await serve(server, status, body, content_type=content_type))
    assert result.code == 3, result.out
    assert result.out.startswith("UNKNOWN: ")
    assert expected in result.out


async def test_unreachable_is_unknown() -> None:
    url = f"http://127.0.0.1:{unused_port()}/health"
    result = await check(url)
    assert result.code == 3
    assert result.out.startswith(f"UNKNOWN: cannot reach {url}: ")


async def test_timeout_is_unknown() -> None:
    async with FakeHedgeGrid() as server:
        server.can("GET", "/health", 200, health_body(), delay=3.0)
        result = await check(server.url + "/health", env={"HEALTH_TIMEOUT": "1"})
    assert result.code == 3, result.out
    assert "cannot reach" in result.out


async def test_url_and_max_age_from_the_environment() -> None:
    async with FakeHedgeGrid() as server:
        url = await serve(server, 200, health_body(bar_age=200.0))
        strict = await check(env={"HEALTH_URL": url})
        lenient = await check(env={"HEALTH_URL": url, "MAX_BAR_AGE": "300"})
    assert strict.code == 2, strict.out
    assert lenient.code == 0, lenient.out
    assert "(max 300s)" in lenient.out
    assert len(server.requests) == 2


async def test_default_url_is_localhost_8080() -> None:
    """Checked without touching port 8080 (another service may use it): the fake server
    acts as curl's HTTP proxy and sees which URL the script asked for."""
    async with FakeHedgeGrid() as proxy:
        result = await check(env={"http_proxy": proxy.url, "no_proxy": "", "NO_PROXY": ""})
    assert result.code == 0, result.out
    (request,) = proxy.requests
    assert (request.headers["Host"], request.path) == ("localhost:8080", "/health")


async def test_bad_max_age_is_unknown() -> None:
    result = await check("http://127.0.0.1:1/health", "2m")
    assert result.code == 3
    assert "MAX_BAR_AGE" in result.out

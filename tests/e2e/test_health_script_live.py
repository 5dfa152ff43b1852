"""docs/examples/health_check.sh and ``python -m hedgegrid_ops health`` against the real node.

Monitoring may use either check, so both must give the same Nagios verdict on the same
node, and both trust the node's own verdict (judged against its ``--max-bar-age``): 0
while bars flow, 2 once they stop (a replayed file that has run out is exactly a feed
that went quiet), 3 when nothing answers. Needs bash, curl and jq for the script:
skipped without them, failed without them under HEDGEGRID_REQUIRE_TOOLS=1.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from tests.support.polling import wait_until
from tests.support.ports import free_port
from tests.support.program import ROOT, RunningService, run_program, running_program
from tests.tools import require_tool

pytestmark = pytest.mark.e2e

SCRIPT = ROOT / "docs" / "examples" / "health_check.sh"
REPLAY_CSV = ROOT / "tests" / "data" / "btcusdt_1m_300.csv"
OK, CRITICAL, UNKNOWN = 0, 2, 3


@pytest.fixture(autouse=True)
def _tools() -> None:
    for tool in ("bash", "curl", "jq"):
        require_tool(tool)


@dataclass
class Verdict:
    code: int
    out: str


def script(*args: str, env: dict[str, str] | None = None) -> Verdict:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in {"HEALTH_URL", "MAX_BAR_AGE"} and "proxy" not in k.lower()
    }
    result = subprocess.run(
        ["bash", str(SCRIPT), *args],
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=30,
    )
    return Verdict(result.returncode, result.stdout + result.stderr)


def cli_health(url: str, *args: str) -> Verdict:
    result = run_program("health", "--url", url, *args, timeout=30)
    return Verdict(result.returncode, result.stdout + result.stderr)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    """A node on the simulated market, with the separate metrics listener on."""
    tmp = tmp_path_factory.mktemp("live")
    with running_program(tmp, "--prometheus-port", str(free_port()), "--speed", "30") as svc:
        # the first bar may come a moment after the listener is up
        url = f"{svc.api_url}/health"

        def ok() -> Verdict | None:
            verdict = script(url)
            return verdict if verdict.code == OK else None

        wait_until(ok, timeout=30, what="the first bar")
        yield svc


def test_script_ok_while_bars_flow(live: RunningService) -> None:
    verdict = script(f"{live.api_url}/health")
    assert verdict.code == OK, verdict.out
    assert verdict.out.startswith("OK:"), verdict.out
    # the perfdata carries the node's own bar age
    assert re.search(r"\| bar_age=\d+s;;;0$", verdict.out.strip()), verdict.out


def test_script_takes_the_url_from_the_environment(live: RunningService) -> None:
    verdict = script(env={"HEALTH_URL": f"{live.api_url}/health"})
    assert verdict.code == OK, verdict.out
    assert verdict.out.startswith("OK:"), verdict.out


def test_both_read_the_separate_metrics_listener_too(live: RunningService) -> None:
    """/health is also served on --prometheus-port, for probes that may only reach it."""
    base = live.metrics_url.removesuffix("/metrics")
    assert base != live.api_url
    verdict = script(f"{base}/health")
    assert verdict.code == OK, verdict.out
    assert verdict.out.startswith("OK:"), verdict.out
    assert cli_health(base).code == OK


def test_cli_health_ok_while_bars_flow(live: RunningService) -> None:
    verdict = cli_health(live.api_url)
    assert verdict.code == OK, verdict.out
    assert verdict.out.startswith("OK:"), verdict.out


def test_cli_health_json_is_the_servers_answer(live: RunningService) -> None:
    verdict = cli_health(live.api_url, "--json")
    assert verdict.code == OK, verdict.out
    body = orjson.loads(verdict.out)
    assert body["status"] == "healthy"
    assert body["trading_state"] == "running"
    assert isinstance(body["last_bar"], float)


def test_both_say_unknown_when_nothing_listens() -> None:
    port = free_port()  # bound and closed again: nothing listens there now
    by_script = script(f"http://127.0.0.1:{port}/health")
    by_cli = cli_health(f"http://127.0.0.1:{port}")
    assert by_script.code == UNKNOWN, by_script.out
    assert by_cli.code == UNKNOWN, by_cli.out
    for verdict in (by_script, by_cli):
        assert verdict.out.startswith("UNKNOWN:"), verdict.out
        assert str(port) in verdict.out, verdict.out


def test_both_say_critical_once_the_replay_has_run_out(tmp_path: Path) -> None:
    """A replayed file ends; the node keeps running but no bar comes: stale, CRITICAL."""
    args = (
        "--replay",
        str(REPLAY_CSV),
        "--hold-after-replay",
        "--speed",
        "60",
        "--max-bar-age",
        "2",
    )
    with running_program(tmp_path, *args) as svc:
        url = f"{svc.api_url}/health"

        def stale() -> Verdict | None:
            verdict = script(url)
            assert verdict.code in {OK, CRITICAL}, verdict.out  # never UNKNOWN
            return verdict if verdict.code == CRITICAL and "2s allowed" in verdict.out else None

        # 300 klines at 60 per second: about 5 s of bars, then 2 s to go stale
        by_script = wait_until(stale, timeout=45, what="the node to report its bars as stale")
        assert by_script.out.startswith("CRITICAL:"), by_script.out
        assert "degraded" in by_script.out, by_script.out
        by_cli = cli_health(svc.api_url)
        assert by_cli.code == CRITICAL, by_cli.out
        assert by_cli.out.startswith("CRITICAL:"), by_cli.out
        # the node's own verdict (its --max-bar-age 2) made this CRITICAL
        assert orjson.loads(cli_health(svc.api_url, "--json").out)["status"] == "degraded"

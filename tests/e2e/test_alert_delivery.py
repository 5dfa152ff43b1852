"""Alerts reach a person: real service -> real Prometheus -> real Alertmanager -> webhook.

The shipped configs are used with only times and addresses changed: Prometheus scrapes
and evaluates every second and sends to this test's Alertmanager; StrategyDown's
"5 minutes without a bar" becomes 3 seconds and its hold 1 s; Alertmanager's group
waits become 1 s and its webhook URLs point at a receiver in this test. Then a flatten
must arrive as FlattenExecuted on the info receiver, and killing the program (SIGKILL,
no goodbye) must arrive as StrategyDown on the critical receiver.
Needs ``prometheus`` and ``prometheus-alertmanager`` (skipped without them, failed
without them under HEDGEGRID_REQUIRE_TOOLS=1).
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.test_prometheus_e2e import http_get, write_config
from tests.support.ports import free_port
from tests.support.program import running_program
from tests.tools import require_tool, stop_process

pytestmark = [pytest.mark.e2e, pytest.mark.prometheus]

ROOT = Path(__file__).resolve().parents[2]
AM_CONFIG = ROOT / "configs" / "alertmanager" / "alertmanager.yml"
RULES = ROOT / "configs" / "prometheus" / "alerts.yml"


class Inbox:
    """A webhook receiver: every POST body, with the path it came to."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []
        inbox = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                inbox.received.append((self.path, json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def firing(self, path: str, alertname: str) -> list[dict[str, Any]]:
        return [
            alert
            for got_path, payload in self.received
            if got_path == path
            for alert in payload["alerts"]
            if alert["labels"]["alertname"] == alertname and alert["status"] == "firing"
        ]


def wait_for(predicate: Any, timeout: float, what: str, dump: Any = None) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}; {dump() if dump else ''}")
        time.sleep(0.25)
    return result


def fast_rules(tmp: Path) -> Path:
    """alerts.yml with StrategyDown's 300 s / 1 m made 3 s / 1 s; nothing else changed."""
    text = RULES.read_text(encoding="utf-8")
    old = "expr: (time() - max_over_time(hedgegrid_last_bar_timestamp[1h])) > 300\n        for: 1m"
    assert old in text, "fixture drift: StrategyDown changed"
    path = tmp / "alerts.yml"
    path.write_text(
        text.replace(
            old,
            "expr: (time() - max_over_time(hedgegrid_last_bar_timestamp[1h])) > 3\n        for: 1s",
        ),
        encoding="utf-8",
    )
    return path


def fast_alertmanager_config(tmp: Path, inbox_url: str) -> Path:
    config = yaml.safe_load(AM_CONFIG.read_text(encoding="utf-8"))
    for route in [config["route"], *config["route"].get("routes", [])]:
        for key in ("group_wait", "group_interval"):
            route[key] = "1s"
    for receiver in config["receivers"]:
        for hook in receiver["webhook_configs"]:
            hook["url"] = inbox_url + urllib.parse.urlsplit(hook["url"]).path
    path = tmp / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def test_a_flatten_and_a_killed_program_reach_the_webhook(tmp_path: Path) -> None:
    prometheus = require_tool("prometheus")
    alertmanager = require_tool("prometheus-alertmanager", "alertmanager")
    inbox = Inbox()
    am_port = free_port()
    am_log = (tmp_path / "alertmanager.log").open("w")
    am = subprocess.Popen(
        [
            alertmanager,
            f"--config.file={fast_alertmanager_config(tmp_path, inbox.url)}",
            f"--storage.path={tmp_path / 'am'}",
            f"--web.listen-address=127.0.0.1:{am_port}",
            "--cluster.listen-address=",  # a single instance, no gossip port
        ],
        stdout=am_log,
        stderr=subprocess.STDOUT,
    )
    prom_log = (tmp_path / "prometheus.log").open("w")
    prom: subprocess.Popen[bytes] | None = None
    try:
        metrics_port = free_port()
        with running_program(tmp_path, "--prometheus-port", str(metrics_port)) as svc:
            target = urllib.parse.urlsplit(svc.metrics_url).netloc
            config_path = write_config(tmp_path, target)
            config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
            config["rule_files"] = [str(fast_rules(tmp_path))]
            (am_target,) = config["alerting"]["alertmanagers"]
            am_target["static_configs"] = [{"targets": [f"127.0.0.1:{am_port}"]}]
            config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
            prom_url = f"http://127.0.0.1:{free_port()}"
            prom = subprocess.Popen(
                [
                    prometheus,
                    f"--config.file={config_path}",
                    f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                    f"--web.listen-address={urllib.parse.urlsplit(prom_url).netloc}",
                ],
                stdout=prom_log,
                stderr=subprocess.STDOUT,
            )

            def logs() -> str:
                return (
                    (tmp_path / "prometheus.log").read_text()[-2000:]
                    + (tmp_path / "alertmanager.log").read_text()[-2000:]
                    + repr(inbox.received)[-2000:]
                )

            def flatten_counter_scraped() -> bool:
                assert prom is not None and prom.poll() is None, logs()
                try:
                    status, body = http_get(
                        f"{prom_url}/api/v1/query?query=hedgegrid_flattens_total", timeout=1
                    )
                except OSError:  # not listening yet
                    return False
                return status == 200 and bool(json.loads(body)["data"]["result"])

            wait_for(flatten_counter_scraped, 60, "the flatten counter to be scraped", logs)
            time.sleep(2)  # a few samples at 0, so increase() sees the step

            request = urllib.request.Request(
                f"{svc.api_url}/flatten",
                data=json.dumps({"side": "both"}).encode(),
                headers={"Content-Type": "application/json"},
                method="POST",
            )
            with urllib.request.urlopen(request, timeout=10) as resp:
                assert resp.status == 200

            (flatten,) = wait_for(
                lambda: inbox.firing("/hedgegrid/info", "FlattenExecuted"),
                60,
                "FlattenExecuted at the info receiver",
                logs,
            )[:1]
            assert flatten["labels"]["severity"] == "info"
            assert flatten["labels"]["instrument"] == "BTCUSDT-PERP.BINANCE"
            assert "flattened" in flatten["annotations"]["summary"]

            svc.proc.kill()  # no signal handler runs: the program is simply gone
            svc.proc.wait(timeout=10)

            (down,) = wait_for(
                lambda: inbox.firing("/hedgegrid/critical", "StrategyDown"),
                60,
                "StrategyDown at the critical receiver",
                logs,
            )[:1]
            assert down["labels"]["severity"] == "critical"
            assert down["labels"]["instrument"] == "BTCUSDT-PERP.BINANCE"
            # Nothing critical went to the info or warning receivers.
            assert not inbox.firing("/hedgegrid/info", "StrategyDown")
            assert not inbox.firing("/hedgegrid/warning", "StrategyDown")
    finally:
        if prom is not None:
            stop_process(prom)
        stop_process(am)
        inbox.server.shutdown()
        prom_log.close()
        am_log.close()

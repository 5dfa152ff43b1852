"""A real Prometheus server scrapes the real service with the shipped configuration.

Unit tests prove the config, the alert rules and the dashboard are well-formed; only a
live server proves they fit together: the scrape job reaches /metrics, the labels the
config adds arrive, every alert rule loads and evaluates, and every dashboard query and
every PromQL example of the docs answers with data.

The shipped prometheus.yml is copied with only three things changed: the target (the
service's ephemeral metrics port), the intervals (1 s so the test takes seconds, not
minutes) and the rule file path (absolute, because the copy lives in a temp dir).
Needs the ``prometheus`` binary: skipped without it, failed without it under
HEDGEGRID_REQUIRE_TOOLS=1 (CI).
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.ports import free_port
from tests.support.program import RunningService, running_program
from tests.tools import require_tool, stop_process
from tests.unit.test_dashboard import SPEC_GAUGES, all_exprs, concrete

pytestmark = [pytest.mark.e2e, pytest.mark.prometheus]

ROOT = Path(__file__).resolve().parents[2]
PROM_DIR = ROOT / "configs" / "prometheus"
OPERATIONS_DOC = ROOT / "docs" / "operations.md"
INSTRUMENT = "BTCUSDT-PERP.BINANCE"

# The operations guide's example queries, verbatim. The last one is an alert condition:
# on a healthy node it is an empty vector, so its inner expression is checked too.
SPEC_QUERIES = (
    'hedgegrid_net_inventory_usdt{instrument="BTCUSDT-PERP.BINANCE"}',
    "rate(hedgegrid_total_pnl_usdt[5m])",
    'hedgegrid_maker_ratio{instrument="BTCUSDT-PERP.BINANCE"}',
)
STALE_BAR_ALERT = "(time() - hedgegrid_last_bar_timestamp) > 120"
STALE_BAR_INNER = "time() - hedgegrid_last_bar_timestamp"
SCRAPES_NEEDED = 4  # rate()/increase() need two samples in their window; margin for jitter


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def docs_promql() -> list[str]:
    """Every query in the ```promql blocks of docs/operations.md (one per line)."""
    text = OPERATIONS_DOC.read_text(encoding="utf-8")
    queries = []
    for block in re.findall(r"```promql\n(.*?)```", text, flags=re.S):
        queries += [q.strip() for q in block.splitlines() if q.strip() and not q.startswith("#")]
    return queries


@dataclass
class Prometheus:
    url: str
    service: RunningService
    rule_names: set[str]

    def query(self, expr: str) -> dict[str, Any]:
        """Instant query; fails the test on any PromQL or server error."""
        status, body = http_get(
            f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        )
        answer = json.loads(body)
        assert status == 200 and answer["status"] == "success", (expr, answer)
        return answer["data"]

    def vector(self, expr: str) -> list[dict[str, Any]]:
        data = self.query(expr)
        assert data["resultType"] == "vector", (expr, data)
        return data["result"]

    def rules(self) -> list[dict[str, Any]]:
        status, body = http_get(f"{self.url}/api/v1/rules")
        assert status == 200, body
        return [r for g in json.loads(body)["data"]["groups"] for r in g["rules"]]


def write_config(tmp_path: Path, target: str) -> Path:
    """The shipped prometheus.yml with only target, intervals and rule path rewritten."""
    config = yaml.safe_load((PROM_DIR / "prometheus.yml").read_text(encoding="utf-8"))
    config["global"]["scrape_interval"] = "1s"
    config["global"]["evaluation_interval"] = "1s"
    config["rule_files"] = [str((PROM_DIR / f).resolve()) for f in config["rule_files"]]
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "hedgegrid"]
    job["scrape_interval"] = "1s"
    (static,) = job["static_configs"]
    static["targets"] = [target]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def shipped_rule_names() -> set[str]:
    names: set[str] = set()
    config = yaml.safe_load((PROM_DIR / "prometheus.yml").read_text(encoding="utf-8"))
    for rule_file in config["rule_files"]:
        rules = yaml.safe_load((PROM_DIR / rule_file).read_text(encoding="utf-8"))
        names |= {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    return names


def wait_for(predicate: Any, timeout: float, what: str, poke: Any = None) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        if poke is not None:
            poke()
        time.sleep(0.25)


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    binary = require_tool("prometheus")
    tmp = tmp_path_factory.mktemp("prometheus")
    metrics_port = free_port()
    with running_program(tmp, "--prometheus-port", str(metrics_port), "--speed", "30") as svc:
        target = urllib.parse.urlsplit(svc.metrics_url).netloc
        assert target.endswith(f":{metrics_port}"), svc.metrics_url
        config = write_config(tmp, target)
        url = f"http://127.0.0.1:{free_port()}"
        log = (tmp / "prometheus.log").open("w")
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp / 'tsdb'}",
                f"--web.listen-address={urllib.parse.urlsplit(url).netloc}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            prom = Prometheus(url, svc, shipped_rule_names())

            def ready() -> bool:
                assert proc.poll() is None, (tmp / "prometheus.log").read_text()[-3000:]
                try:
                    return http_get(f"{url}/-/ready", timeout=1)[0] == 200
                except OSError:
                    return False

            def traffic() -> None:
                # API traffic between scrapes, including errors, so the API panels'
                # rate() and histogram_quantile() have something to compute.
                http_get(f"{svc.api_url}/status")
                http_get(f"{svc.api_url}/no-such-route")

            def scraped_enough() -> bool:
                result = prom.vector("count_over_time(hedgegrid_uptime_seconds[1m])")
                return bool(result) and float(result[0]["value"][1]) >= SCRAPES_NEEDED

            def rules_evaluated() -> bool:
                rules = prom.rules()
                return bool(rules) and all(r.get("health") == "ok" for r in rules)

            wait_for(ready, 20, "Prometheus to become ready")
            wait_for(scraped_enough, 30, f"{SCRAPES_NEEDED} scrapes", poke=traffic)
            wait_for(rules_evaluated, 10, "every rule to be evaluated")
            yield prom
        finally:
            stop_process(proc)
            log.close()


def test_the_shipped_labels_arrive_with_every_spec_gauge(prometheus: Prometheus) -> None:
    for name in sorted(SPEC_GAUGES):
        samples = prometheus.vector(name)
        assert samples, f"{name} has no samples"
        for sample in samples:
            labels = sample["metric"]
            assert labels["instrument"] == INSTRUMENT, labels
            # job and the static labels come from the shipped scrape config
            assert labels["job"] == "hedgegrid", labels
            assert labels["strategy"] == "hedge_grid_v1", labels
            assert labels["environment"] == "production", labels


def test_scraped_values_are_the_services_own(prometheus: Prometheus) -> None:
    """Prometheus stores what /metrics says, not a parse artefact (e.g. the build info)."""
    status, body = http_get(prometheus.service.metrics_url)
    assert status == 200
    build = re.search(r"^hedgegrid_build_info\{([^}]*)\} (\S+)$", body.decode(), flags=re.M)
    assert build, "hedgegrid_build_info missing from /metrics"
    (sample,) = prometheus.vector("hedgegrid_build_info")
    assert float(sample["value"][1]) == float(build.group(2))
    for pair in re.findall(r'(\w+)="([^"]*)"', build.group(1)):
        assert sample["metric"][pair[0]] == pair[1]
    assert prometheus.vector('up{job="hedgegrid"}')[0]["value"][1] == "1"


@pytest.mark.parametrize("expr", SPEC_QUERIES)
def test_spec_example_queries_return_data(prometheus: Prometheus, expr: str) -> None:
    assert prometheus.vector(expr), f"no data for {expr}"


def test_stale_bar_alert_expression_is_silent_on_a_healthy_node(prometheus: Prometheus) -> None:
    ages = prometheus.vector(STALE_BAR_INNER)
    assert ages, "time() - hedgegrid_last_bar_timestamp has no data"
    assert all(0 <= float(s["value"][1]) < 120 for s in ages), ages
    assert prometheus.vector(STALE_BAR_ALERT) == []


def test_docs_promql_examples_return_data(prometheus: Prometheus) -> None:
    queries = docs_promql()
    assert queries, "docs/operations.md has no ```promql examples"
    for expr in queries:
        if expr == STALE_BAR_ALERT or expr.endswith("> 120"):
            prometheus.vector(expr)  # an alert condition: must evaluate, may be empty
            continue
        assert prometheus.vector(expr), f"docs example returns no data: {expr}"


def test_every_alert_rule_is_loaded_and_evaluates(prometheus: Prometheus) -> None:
    rules = prometheus.rules()
    loaded = {r["name"] for r in rules if r["type"] == "alerting"}
    assert loaded == prometheus.rule_names
    assert len(prometheus.rule_names) >= 10  # the spec's four and the operator's six
    for rule in rules:
        assert rule["health"] == "ok", rule
        assert not rule.get("lastError"), rule


def test_a_healthy_node_fires_no_critical_alert(prometheus: Prometheus) -> None:
    status, body = http_get(f"{prometheus.url}/api/v1/alerts")
    assert status == 200
    alerts = json.loads(body)["data"]["alerts"]
    critical = [a for a in alerts if a["labels"].get("severity") == "critical"]
    assert critical == [], critical


@pytest.mark.parametrize("expr", all_exprs())
def test_every_dashboard_query_returns_data(prometheus: Prometheus, expr: str) -> None:
    assert prometheus.vector(concrete(expr)), f"dashboard query answers nothing: {expr}"


def test_the_prometheus_pages_the_docs_link_exist(prometheus: Prometheus) -> None:
    """docs/operations.md links Prometheus's own pages; Debian's 2.42 serves them under
    /classic/ only, so a link to /targets or /alerts would be a 404 for the reader."""
    text = OPERATIONS_DOC.read_text(encoding="utf-8")
    paths = sorted(set(re.findall(r"http://127\.0\.0\.1:9091(/[^`\s)]*)", text)))
    assert paths, "docs/operations.md links no Prometheus page"
    for path in paths:
        status, _ = http_get(f"{prometheus.url}{path}")
        assert status == 200, f"{path} answers {status} on this Prometheus"

"""/docs in a real headless browser: Swagger UI renders every endpoint, offline.

Swagger UI builds the operation list in JavaScript from /openapi.json, so fetching the
HTML proves nothing; chromium runs the scripts and ``--dump-dom`` prints the rendered
page. The browser's resolver maps every host except the service's loopback address to
nowhere, so a page that needed a CDN would render without its scripts and fail here.
Needs ``chromium``: skipped without it, failed without it under HEDGEGRID_REQUIRE_TOOLS=1.
"""

from __future__ import annotations

import html.parser
import json
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from tests.cdp import headless_args
from tests.support.program import RunningService, running_program
from tests.tools import require_tool

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

# The routes of the contract (the shared API document); /docs must list each of them.
CONTRACT_PATHS = frozenset(
    {
        "/health",
        "/status",
        "/ladders",
        "/orders",
        "/start",
        "/stop",
        "/flatten",
        "/set-throttle",
        "/metrics",
        "/openapi.json",
        "/docs",
    }
)


class _Collector(html.parser.HTMLParser):
    """Operation paths Swagger UI rendered, and every URL the page refers to."""

    def __init__(self) -> None:
        super().__init__()
        self.op_paths: list[str] = []
        self.op_methods: list[tuple[str, str]] = []
        self.refs: list[str] = []
        self._current_op: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = dict(attrs)
        classes = (attr.get("class") or "").split()
        if "opblock-summary-path" in classes and attr.get("data-path"):
            self.op_paths.append(attr["data-path"] or "")
        for candidate in ("opblock-get", "opblock-post", "opblock-put", "opblock-delete"):
            if candidate in classes:
                self._current_op = candidate.removeprefix("opblock-").upper()
        if self._current_op and attr.get("data-path") and "opblock-summary-path" in classes:
            self.op_methods.append((self._current_op, attr["data-path"] or ""))
        if tag in {"script", "img", "iframe"} and attr.get("src"):
            self.refs.append(attr["src"] or "")
        if tag == "link" and attr.get("href"):
            self.refs.append(attr["href"] or "")


@dataclass
class Rendered:
    service: RunningService
    dom: str
    page: _Collector
    raw_page: _Collector


def dump_dom(browser: str, url: str, profile: Path) -> str:
    host = urllib.parse.urlsplit(url).hostname
    result = subprocess.run(
        [
            # any host but the service resolves to nothing: no CDN can rescue the page
            *headless_args(browser, profile, host or ""),
            "--virtual-time-budget=10000",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def collect(markup: str) -> _Collector:
    collector = _Collector()
    collector.feed(markup)
    return collector


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rendered]:
    browser = require_tool("chromium", "chromium-browser")
    tmp = tmp_path_factory.mktemp("browser")
    with running_program(tmp, "--speed", "30") as svc:
        with urllib.request.urlopen(f"{svc.api_url}/docs", timeout=10) as resp:
            raw = resp.read().decode()
        dom = dump_dom(browser, f"{svc.api_url}/docs", tmp / "profile")
        yield Rendered(svc, dom, collect(dom), collect(raw))


def openapi_paths(api_url: str) -> dict[str, set[str]]:
    with urllib.request.urlopen(f"{api_url}/openapi.json", timeout=10) as resp:
        spec = json.load(resp)
    return {path: {m.upper() for m in ops} for path, ops in spec["paths"].items()}


def test_every_endpoint_is_rendered(rendered: Rendered) -> None:
    shown = set(rendered.page.op_paths)
    assert shown >= CONTRACT_PATHS, f"missing on /docs: {sorted(CONTRACT_PATHS - shown)}"
    assert shown == set(openapi_paths(rendered.service.api_url))
    assert len(rendered.page.op_paths) == len(shown), "an operation is listed twice"


def test_each_operation_is_rendered_with_its_method(rendered: Rendered) -> None:
    expected = {
        (method, path)
        for path, methods in openapi_paths(rendered.service.api_url).items()
        for method in methods
    }
    assert set(rendered.page.op_methods) == expected


def test_the_page_loads_nothing_from_another_origin(rendered: Rendered) -> None:
    api = urllib.parse.urlsplit(rendered.service.api_url)
    for page in (rendered.raw_page, rendered.page):
        assert page.refs, "the page references no assets at all"
        for ref in page.refs:
            parts = urllib.parse.urlsplit(ref)
            if parts.scheme == "data":
                continue
            assert parts.netloc in {"", api.netloc}, f"asset from elsewhere: {ref}"


def test_the_browser_fetched_the_assets_from_us(rendered: Rendered) -> None:
    """The access log shows chromium loading the scripts and the spec from the service."""
    records = [
        orjson.loads(line)
        for line in (rendered.service.log_dir / "api_access.log").read_text().splitlines()
    ]
    by_browser = {
        r["path"]: r["status"] for r in records if "HeadlessChrome" in r.get("user_agent", "")
    }
    scripts = [
        urllib.parse.urlsplit(ref).path for ref in rendered.raw_page.refs if ref.endswith(".js")
    ]
    assert scripts, "the /docs page loads no script"
    for path in [*scripts, "/openapi.json"]:
        assert by_browser.get(path) == 200, f"{path}: {by_browser.get(path)}"

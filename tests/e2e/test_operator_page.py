"""The operator page in real headless Chromium against the running program, offline.

The program runs as an operator would start it (``python -m hedgegrid_ops run
--enable-ops`` on the simulated market, API key from the environment). Chromium is
driven over the DevTools protocol with real mouse clicks and key presses, and can
resolve no host but the service's, so the page must work with nothing from a CDN.

What is checked, in order (the tests share the program, the last one flattens it):
1. without a key the stream refuses the page, which asks for the key;
2. a wrong key shows the API's error, and a Stop clicked with it changes nothing;
3. with the right key every value on the page equals GET /status for the same snapshot,
   and the ladder draws exactly the rungs GET /ladders lists, to price scale;
4. Flatten both, confirmed in the page's dialog, ends with the page showing the state
   change and flat positions, and the program flat;
and that the page asked nobody but the service for anything, with no script errors.

Run as a module to refresh the screenshot in docs/:
``python -m tests.e2e.test_operator_page docs/operator-page.png``.
"""

from __future__ import annotations

import asyncio
import json
import math
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cdp import Page, open_page
from tests.support.polling import wait_until
from tests.support.program import RunningService, running_program
from tests.tools import require_tool

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

API_KEY = "page-test-key-5d1e0c7b"
SPEED = "4"  # slow enough that the page and GET /status often show the same snapshot


def get(svc: RunningService, path: str, key: str | None = API_KEY) -> tuple[int, Any]:
    request = urllib.request.Request(svc.api_url + path, headers={"X-API-Key": key or ""})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    tmp = tmp_path_factory.mktemp("page")
    with running_program(tmp, "--speed", SPEED, env={"HEDGEGRID_API_KEY": API_KEY}) as svc:
        # listening is not trading yet: under load the first bars take seconds to arrive
        wait_until(
            lambda: get(svc, "/status")[1].get("trading_state"),
            lambda state: state == "running",
            timeout=60,
            what="the grid to be running",
        )
        yield svc


@pytest.fixture(scope="module")
def browser() -> str:
    return require_tool("chromium", "chromium-browser")


def host_of(svc: RunningService) -> str:
    return urllib.parse.urlsplit(svc.api_url).hostname or ""


async def enter_key(page: Page, key: str) -> None:
    if await page.evaluate("document.querySelector('#key-panel').hidden"):
        await page.click("#key-button")
    await page.type_into("#key-input", key)
    await page.press_enter()


async def open_with_key(page: Page, svc: RunningService) -> None:
    await page.navigate(svc.api_url + "/")
    await page.wait_for("document.querySelector('#conn').dataset.conn === 'auth'")
    await enter_key(page, API_KEY)
    await page.wait_for("document.body.dataset.snapshotTs")
    await page.wait_for("document.querySelector('#conn').dataset.conn !== 'auth'")


PAGE_VALUES = """(() => {
  const out = {ts: Number(document.body.dataset.snapshotTs), fields: {}};
  for (const n of document.querySelectorAll('[data-field]')) {
    out.fields[n.dataset.field] = {value: n.dataset.value, text: n.textContent,
                                   digits: n.dataset.digits ?? null, kind: n.dataset.kind ?? null};
  }
  out.rungs = [...document.querySelectorAll('#ladder g.rung')].map((g) => ({
    side: g.dataset.side, role: g.dataset.role, price: Number(g.dataset.price),
    coid: g.dataset.coid, y: g.dataset.y === undefined ? null : Number(g.dataset.y)}));
  const mid = document.querySelector('#ladder g.mid');
  out.mid = mid ? Number(mid.dataset.price) : null;
  return out;
})()"""


def pick(obj: Any, path: str) -> Any:
    for part in path.split("."):
        obj = obj[part]
    return obj


async def same_snapshot(page: Page, svc: RunningService, route: str) -> tuple[dict, dict]:
    """The page's values and GET ``route``'s body for the same snapshot timestamp."""
    for _ in range(200):
        before = await page.evaluate(PAGE_VALUES)
        status, body = await asyncio.to_thread(get, svc, route)
        assert status == 200, body
        after = await page.evaluate(PAGE_VALUES)
        if before["ts"] == after["ts"] == body["timestamp"]:
            return after, body
        await asyncio.sleep(0.05)
    raise AssertionError(f"the page never showed the snapshot {route} answered")


def check_field(path: str, shown: dict, expected: Any) -> None:
    """``data-value`` is the raw value; the text is it, rounded as the page says."""
    if expected is None:
        assert shown["value"] == "", (path, shown)
        return
    if isinstance(expected, str):
        assert shown["value"] == str(expected), (path, shown, expected)
        assert shown["text"] == str(expected), (path, shown, expected)
        return
    assert math.isclose(float(shown["value"]), float(expected), rel_tol=0, abs_tol=1e-12), (
        path,
        shown,
        expected,
    )
    if shown["kind"] == "time":
        return
    if shown["kind"] == "qty":  # to 6 decimals, trailing zeros dropped
        assert float(shown["text"]) == round(float(expected), 6), (path, shown, expected)
        return
    digits = int(shown["digits"])
    assert shown["text"] == f"{expected:.{digits}f}", (path, shown, expected)


# ---- the tests ---------------------------------------------------------------------------


async def test_without_a_key_the_page_asks_for_one(
    service: RunningService, browser: str, tmp_path: Path
) -> None:
    async with open_page(browser, tmp_path / "profile", host_of(service)) as page:
        await page.navigate(service.api_url + "/")
        await page.wait_for("document.querySelector('#conn').dataset.conn === 'auth'")
        banner = await page.evaluate("document.querySelector('#banner').textContent")
        assert banner == "API key needed: missing X-API-Key header"
        assert not await page.evaluate("document.querySelector('#key-panel').hidden")
        assert await page.evaluate("document.body.dataset.snapshotTs") is None
        assert page.console_errors == []


async def test_a_wrong_key_shows_the_error_and_changes_nothing(
    service: RunningService, browser: str, tmp_path: Path
) -> None:
    _, before = get(service, "/status")
    assert before["trading_state"] == "running"
    async with open_page(browser, tmp_path / "profile", host_of(service)) as page:
        await page.navigate(service.api_url + "/")
        await page.wait_for("document.querySelector('#conn').dataset.conn === 'auth'")
        await enter_key(page, "not-the-key")
        banner = await page.wait_for(
            "(() => { const t = document.querySelector('#banner').textContent;"
            " return t.includes('refused') && t; })()"
        )
        assert "wrong X-API-Key" in banner
        await page.click("button[data-action='stop']")
        result = await page.wait_for(
            "document.querySelector('#result').dataset.http && "
            "document.querySelector('#result').textContent"
        )
        assert result.startswith("stop → HTTP 401")
        assert '"error": "unauthorized"' in result
        assert await page.evaluate("document.querySelector('#result').dataset.status") == "error"
    _, after = get(service, "/status")
    assert after["trading_state"] == "running"
    assert after["counters"]["flattens"] == before["counters"]["flattens"]


async def test_page_values_equal_status_and_the_ladder_shows_the_rungs(
    service: RunningService, browser: str, tmp_path: Path
) -> None:
    async with open_page(browser, tmp_path / "profile", host_of(service)) as page:
        await open_with_key(page, service)
        await page.wait_for("document.querySelectorAll('#ladder g.rung').length > 0")
        shown, status = await same_snapshot(page, service, "/status")
        fields = shown["fields"]
        for path, node in fields.items():
            if path.startswith("health."):
                continue
            check_field(path, node, pick(status, path))
        assert {p for p in fields if not p.startswith("health.")} >= {
            "trading_state",
            "state_reason",
            "regime",
            "throttle",
            "funding.rate",
            "funding.next_funding_time",
            "positions.long.quantity",
            "positions.short.entry_price",
            "balance_usdt",
            "equity_usdt",
            "pnl.realized",
            "pnl.unrealized",
            "pnl.total",
        }
        assert fields["health.status"]["value"] in {"healthy", "degraded"}

        shown, ladders = await same_snapshot(page, service, "/ladders")
        grid = [r for r in shown["rungs"] if r["role"] == "grid"]
        placed = {("long", r["client_order_id"], r["price"]) for r in ladders["long_ladder"]} | {
            ("short", r["client_order_id"], r["price"]) for r in ladders["short_ladder"]
        }
        assert placed, "the program placed no rungs"
        assert {(r["side"], r["coid"], r["price"]) for r in grid} == placed
        assert len(grid) == len(placed)
        assert shown["mid"] == ladders["mid_price"]
        # to price scale: a higher price is drawn higher (smaller y), proportionally
        by_price = sorted(grid, key=lambda r: r["price"])
        ys = [r["y"] for r in by_price]
        assert ys == sorted(ys, reverse=True)
        lo, hi = by_price[0], by_price[-1]
        if hi["price"] > lo["price"]:
            scale = (lo["y"] - hi["y"]) / (hi["price"] - lo["price"])
            for r in by_price:
                assert math.isclose(
                    lo["y"] - r["y"], (r["price"] - lo["price"]) * scale, abs_tol=0.02
                )
        # long entries below the mid, short entries above it
        assert all(r["price"] < shown["mid"] for r in grid if r["side"] == "long")
        assert all(r["price"] > shown["mid"] for r in grid if r["side"] == "short")
        assert page.console_errors == []
        assert_only_local(page, service)


async def test_flatten_both_from_the_page(
    service: RunningService, browser: str, tmp_path: Path
) -> None:
    # wait until there is something to flatten
    for _ in range(600):
        _, status = get(service, "/status")
        legs = status["positions"]
        if legs["long"]["quantity"] > 0 or legs["short"]["quantity"] > 0:
            break
        await asyncio.sleep(0.1)
    else:
        pytest.fail("the program never opened a position to flatten")
    async with open_page(browser, tmp_path / "profile", host_of(service)) as page:
        await open_with_key(page, service)
        await page.click("button[data-action='flatten'][data-side='both']")
        await page.wait_for("document.querySelector('#confirm').open")
        text = await page.evaluate("document.querySelector('#confirm-text').textContent")
        assert "Flatten both" in text
        await page.click("#confirm-yes")
        result = await page.wait_for(
            "document.querySelector('#result').dataset.http && "
            "document.querySelector('#result').textContent"
        )
        assert result.startswith("flatten both → HTTP 200"), result
        answer = json.loads(result.split("\n", 1)[1])
        assert answer["status"] == "flattening" and answer["side"] == "both"
        # the page follows the stream to the end of the flatten
        await page.wait_for(
            "document.querySelector('[data-field=\"trading_state\"]').dataset.value === 'paused'",
            timeout=60,
        )
        await page.wait_for(
            "Number(document.querySelector('[data-field=\"positions.long.quantity\"]')"
            ".dataset.value) === 0 && Number(document.querySelector("
            "'[data-field=\"positions.short.quantity\"]').dataset.value) === 0",
            timeout=60,
        )
        log = await page.evaluate("document.querySelector('#events').textContent")
        assert "flatten done" in log and "→ paused" in log
        assert "audit flatten → ok" in log
        assert page.console_errors == []
        assert_only_local(page, service)
    _, status = get(service, "/status")
    assert status["trading_state"] == "paused"
    assert status["positions"]["long"]["quantity"] == 0
    assert status["positions"]["short"]["quantity"] == 0
    _, orders = get(service, "/orders")
    assert not [o for o in orders["orders"] if o["role"] == "grid"]


async def test_the_page_fits_a_phone(service: RunningService, browser: str, tmp_path: Path) -> None:
    async with open_page(browser, tmp_path / "profile", host_of(service)) as page:
        await page.set_viewport(390, 844, mobile=True)
        await open_with_key(page, service)
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the page is {width}px wide on a 390px phone"


async def test_the_indicator_shows_when_the_stream_is_down(
    service: RunningService, browser: str, tmp_path: Path
) -> None:
    """Last in the module: it stops the program."""
    async with open_page(browser, tmp_path / "profile", host_of(service)) as page:
        await open_with_key(page, service)
        await page.wait_for("document.querySelector('#conn').dataset.conn === 'live'", timeout=30)
        await asyncio.to_thread(service.stop)
        await page.wait_for("document.querySelector('#conn').dataset.conn === 'down'", timeout=30)
        text = await page.evaluate("document.querySelector('#conn-text').textContent")
        assert text.startswith("disconnected"), text


def assert_only_local(page: Page, svc: RunningService) -> None:
    origin = urllib.parse.urlsplit(svc.api_url).netloc
    assert page.requests, "no request was recorded"
    for url in page.requests:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme in {"data", "about"}:
            continue
        assert parts.netloc == origin, f"the page fetched {url}"


# ---- the screenshot in docs/ ---------------------------------------------------------------


async def _screenshot(target: Path) -> None:
    browser = require_tool("chromium", "chromium-browser")
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_program(Path(tmp), "--speed", "20", env={"HEDGEGRID_API_KEY": API_KEY}) as svc,
    ):
        async with open_page(browser, Path(tmp) / "profile", host_of(svc)) as page:
            await page.set_viewport(1280, 1500)
            await open_with_key(page, svc)
            await asyncio.sleep(20)  # some fills and an equity line
            await page.screenshot(target)


if __name__ == "__main__":
    asyncio.run(_screenshot(Path(sys.argv[1] if len(sys.argv) > 1 else "operator-page.png")))

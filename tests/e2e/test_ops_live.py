"""The operations layer of the REAL program, trading the offline market at high speed.

One service (``python -m hedgegrid_ops run --enable-ops``, ``--speed 120``, API on an
ephemeral port, a separate Prometheus listener) is shared by the whole module, but no
test depends on another having run: each first brings the service to a running grid at
throttle 1.0 (``running_with_grid``), and the log test checks the access and audit
lines of every request sent so far while the service runs, so any order or ``-k``
selection works. The service must exit cleanly with a run summary when the module ends
(checked at fixture teardown).

How "metrics agree with /status" is made exact while the market keeps moving:
the comparison is bracketed — /status, /ladders, /metrics, /status again — and
only accepted when both /status answers are identical and /ladders carries the same
snapshot timestamp, i.e. no snapshot was published in between (a retry loop; the
frozen-market module compares without any bracketing once the replay has ended).
"""

from __future__ import annotations

import asyncio
import itertools
import math
import re
import socket
import statistics
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from hedgegrid_ops.api import Funding, Ladders, Orders, Status
from hedgegrid_ops.config import load_strategy_config
from hedgegrid_ops.snapshot import Counters, OrderView, RungView, SideState
from tests.spec_contract import INSTRUMENT, SPEC_METRICS
from tests.support.harness import (
    COMMAND_ROUTES,
    Api,
    Journal,
    Reply,
    assert_metrics_match_status,
    check_logs_parse,
    grid_orders,
)
from tests.support.polling import poll
from tests.support.ports import free_port
from tests.support.program import (
    STRATEGY_YAML,
    RunningService,
    run_program,
    running_program,
)
from tests.support.prometheus import find, metric_types, parse_prometheus, value
from tests.support.webhook import WebhookReceiver, webhook_receiver

pytestmark = pytest.mark.e2e

SPEED = "120"
STRATEGY = load_strategy_config(STRATEGY_YAML)

# The exact key sets of the answers, from the wire Structs: a field the server sends but
# the Struct does not declare (or the other way round) fails here on the real program.
STATUS_KEYS = set(Status.__struct_fields__)
SIDE_KEYS = set(SideState.__struct_fields__)
FUNDING_KEYS = set(Funding.__struct_fields__)
COUNTER_KEYS = set(Counters.__struct_fields__)
RUNG_KEYS = set(RungView.__struct_fields__)
ORDER_KEYS = set(OrderView.__struct_fields__)
# Which way each role trades for each hedge side (hedge mode: exits trade against the entry).
ORDER_SIDE = {
    ("LONG", "grid"): "BUY",
    ("SHORT", "grid"): "SELL",
    ("LONG", "take_profit"): "SELL",
    ("SHORT", "take_profit"): "BUY",
    ("LONG", "stop_loss"): "SELL",
    ("SHORT", "stop_loss"): "BUY",
    ("LONG", "flatten"): "SELL",
    ("SHORT", "flatten"): "BUY",
}


@dataclass
class Live:
    service: RunningService
    journal: Journal
    prometheus_base: str
    webhook: WebhookReceiver  # gets the service's --notify-url messages
    broken: str | None = None  # set when a test left the service unusable for the rest


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    prometheus_port = free_port()
    with (
        webhook_receiver() as webhook,
        running_program(
            tmp_path_factory.mktemp("ops_live"),
            "--speed",
            SPEED,
            "--prometheus-port",
            str(prometheus_port),
            "--notify-url",
            webhook.url,
            "--notify-name",
            "ops-live",
        ) as service,
    ):
        yield Live(service, Journal("live"), f"http://127.0.0.1:{prometheus_port}", webhook)
        assert service.stop() == 0, "the service did not exit cleanly"
        # Stopping halts the strategy; the notifier still posts that before it closes.
        assert any(
            re.fullmatch(r"\[hedgegrid ops-live \S+\] HALTED: node stopping \(was \w+\)", t)
            for t in webhook.texts()
        ), webhook.texts()[-3:]
        assert not [ln for ln in service.lines if ln.get("event") == "non_json_stdout"]
        summary = service.lines[-1]
        assert summary["event"] == "run_summary" and summary["bars_processed"] > 0
        check_logs_parse(service.log_dir)  # every line of every file, once they are complete


@pytest.fixture
async def api(live: Live) -> AsyncIterator[Api]:
    if live.broken:
        pytest.fail(f"the shared service is unusable: {live.broken}")
    async with aiohttp.ClientSession() as session:
        yield Api(live.service.api_url, session, live.journal)


def fills(status: dict[str, Any]) -> int:
    c = status["counters"]
    return (
        c["fills_buy_maker"] + c["fills_buy_taker"] + c["fills_sell_maker"] + c["fills_sell_taker"]
    )


def submitted(status: dict[str, Any]) -> int:
    return status["counters"]["orders_submitted_buy"] + status["counters"]["orders_submitted_sell"]


def qty(status: dict[str, Any], side: str) -> float:
    return status["positions"][side]["quantity"]


async def wait_bars(api: Api, count: int, timeout: float = 20.0) -> dict[str, Any]:
    start = (await api.status())["counters"]["bars_processed"]
    return await poll(
        api.status,
        lambda s: s["counters"]["bars_processed"] >= start + count,
        timeout,
        f"{count} more bars",
    )


async def running_with_grid(api: Api) -> dict[str, Any]:
    """Bring the shared service to the state every test starts from, whatever ran before:
    no flatten under way, trading, throttle 1.0, grid orders placed."""
    await poll(api.status, lambda s: s["trading_state"] != "flattening", 30, "a flatten to end")
    await api.ok("POST", "/start")
    await api.ok("POST", "/set-throttle", {"throttle": 1.0})
    return await poll(
        api.status,
        lambda s: s["trading_state"] == "running" and s["open_orders"] > 0,
        20,
        "a running grid with open orders",
    )


# ---- 1. reads -----------------------------------------------------------------------------


async def test_reads_show_real_trading_in_the_contract_shapes(api: Api, live: Live) -> None:
    status = await poll(
        api.status,
        lambda s: fills(s) > 0 and qty(s, "long") + qty(s, "short") > 0 and s["open_orders"] > 0,
        30,
        "fills, an open position and open orders",
    )
    assert status.keys() == STATUS_KEYS, STATUS_KEYS ^ status.keys()
    assert status["running"] is True and status["trading_state"] == "running"
    assert status["instrument"] == INSTRUMENT
    assert status["funding"].keys() == FUNDING_KEYS
    assert status["counters"].keys() == COUNTER_KEYS
    mid = status["mid_price"]
    assert isinstance(mid, float) and mid > 0
    assert status["grid_center"] > 0
    assert 0.0 <= status["throttle"] <= 1.0 and 0.0 <= status["maker_ratio"] <= 1.0
    for side in ("long", "short"):
        pos = status["positions"][side]
        assert pos.keys() == SIDE_KEYS
        if pos["quantity"] > 0:
            # Real values, not placeholders: inventory is the quantity valued near the market.
            assert pos["entry_price"] > 0
            assert math.isclose(pos["inventory_usdt"] / pos["quantity"], mid, rel_tol=0.02)
        else:
            assert pos["inventory_usdt"] == 0.0 and pos["unrealized_pnl"] == 0.0
    unrealized = sum(status["positions"][s]["unrealized_pnl"] for s in ("long", "short"))
    assert math.isclose(status["pnl"]["unrealized"], unrealized, abs_tol=1e-9)
    assert math.isclose(
        status["pnl"]["total"],
        status["pnl"]["realized"] + status["pnl"]["unrealized"],
        abs_tol=1e-9,
    )
    assert math.isclose(status["equity_usdt"], status["balance_usdt"] + unrealized, abs_tol=1e-6)
    assert status["counters"]["bars_processed"] > 0 and submitted(status) > 0
    assert status["last_bar"] is not None and status["uptime"] > 0

    health = await api.get("/health", key=None)
    assert health.status == 200, health.body
    body = health.json()
    assert body["status"] == "healthy" and body["trading_state"] == "running"
    assert body["uptime"] > 0 and 0 <= body["bar_age_seconds"] < 120
    assert abs(body["last_bar"] - time.time()) < 120

    ladders = await api.ok("GET", "/ladders")
    assert ladders.keys() == set(Ladders.__struct_fields__)
    assert ladders["long_ladder"] or ladders["short_ladder"], ladders
    for side, ladder in (("LONG", ladders["long_ladder"]), ("SHORT", ladders["short_ladder"])):
        assert [r["rung"] for r in ladder] == sorted(r["rung"] for r in ladder)
        for rung in ladder:
            assert rung.keys() == RUNG_KEYS
            assert side in rung["client_order_id"] and rung["qty"] > 0
            # Entries are post-only: bids below the grid center, asks above it.
            if side == "LONG":
                assert rung["price"] < ladders["grid_center"]
            else:
                assert rung["price"] > ladders["grid_center"]

    orders = await api.ok("GET", "/orders")
    assert orders.keys() == set(Orders.__struct_fields__)
    assert orders["count"] == len(orders["orders"]) > 0
    roles = set()
    for order in orders["orders"]:
        assert order.keys() == ORDER_KEYS
        roles.add(order["role"])
        assert order["side"] == ORDER_SIDE[(order["position_side"], order["role"])], order
        assert order["quantity"] > 0 and 0 <= order["filled_qty"] <= order["quantity"]
        if order["role"] == "grid":
            assert isinstance(order["rung"], int) and order["order_type"] == "LIMIT"
        else:
            assert order["rung"] is None
    assert "grid" in roles

    # The Prometheus listener serves /metrics and /health only.
    text = await api.metrics_text(url=f"{live.prometheus_base}/metrics")
    assert set(SPEC_METRICS) <= {s.name for s in parse_prometheus(text)}
    prom_health = await api.get("/health", url=f"{live.prometheus_base}/health", key=None)
    assert prom_health.status == 200 and prom_health.json()["status"] == "healthy"
    prom_status = await api.get("/status", url=f"{live.prometheus_base}/status")
    assert prom_status.status == 404 and prom_status.json()["error"] == "not_found"


# ---- 2. metrics against /status ------------------------------------------------------------


async def _bracketed(api: Api, metrics_url: str) -> tuple[dict, dict, str]:
    """/status, /ladders and /metrics taken from one and the same snapshot (retry until so)."""
    for _ in range(300):
        before = await api.status()
        ladders = await api.ok("GET", "/ladders")
        text = await api.metrics_text(url=metrics_url)
        after = await api.status()
        if before == after and ladders["timestamp"] == before["timestamp"]:
            return before, ladders, text
    raise AssertionError("never caught /status, /ladders and /metrics on one snapshot")


async def test_metrics_agree_with_status_on_both_listeners(api: Api, live: Live) -> None:
    await running_with_grid(api)
    for url in (f"{live.service.api_url}/metrics", live.service.metrics_url):
        status, ladders, text = await _bracketed(api, url)
        samples = parse_prometheus(text)
        for name in SPEC_METRICS:
            hits = [s for s in samples if s.name == name]
            assert [dict(s.labels) for s in hits] == [{"instrument": INSTRUMENT}], (name, hits)
        assert_metrics_match_status(text, status, ladders)
        # Real numbers, not zeros: the account moved and the grid is placed.
        assert (
            value(samples, "hedgegrid_active_rungs_long")
            + value(samples, "hedgegrid_active_rungs_short")
            > 0
        )
        assert value(samples, "hedgegrid_bars_processed_total") > 0
        assert metric_types(text)["hedgegrid_bars_processed_total"] == "counter"
        build = find(samples, "hedgegrid_build_info")
        assert len(build) == 1 and build[0].value == 1
        assert {"version", "nautilus_version", "python_version"} <= build[0].labels.keys()
        assert find(samples, "hedgegrid_event_loop_lag_seconds")
        assert find(samples, "hedgegrid_api_requests_total", route="/status", method="GET")


# ---- 3. throttle --------------------------------------------------------------------------


def _spacing_bps(ladders: dict[str, Any]) -> list[float]:
    """Distance between placed neighbour rungs, per rung step, in bps of the grid center."""
    out: list[float] = []
    for ladder in (ladders["long_ladder"], ladders["short_ladder"]):
        for a, b in itertools.pairwise(ladder):
            out.append(
                abs(b["price"] - a["price"])
                / (b["rung"] - a["rung"])
                / ladders["grid_center"]
                * 1e4
            )
    return out


async def _measure(api: Api, throttle: float) -> tuple[float, int, int]:
    """Median rung spacing, most rungs and highest rung index over a few ladder samples."""
    spacings: list[float] = []
    most = top = 0
    deadline = time.monotonic() + 20
    samples = 0
    while samples < 6 or not spacings:
        assert time.monotonic() < deadline, f"no two neighbour rungs placed at throttle {throttle}"
        ladders = await api.ok("GET", "/ladders")
        assert ladders["throttle"] == throttle
        rungs = ladders["long_ladder"] + ladders["short_ladder"]
        spacings += _spacing_bps(ladders)
        most = max(most, len(rungs))
        top = max([top, *(r["rung"] for r in rungs)])
        samples += 1
        await asyncio.sleep(0.1)
    return statistics.median(spacings), most, top


async def test_throttle_changes_the_placed_ladder(api: Api) -> None:
    await running_with_grid(api)
    before = await api.status()
    assert before["throttle"] == 1.0
    full_spacing, full_most, full_top = await _measure(api, 1.0)

    reply = await api.ok("POST", "/set-throttle", {"throttle": 0.0})
    assert reply["status"] == "updated"
    assert reply["new_throttle"] == 0.0 and reply["previous_throttle"] == 1.0
    assert isinstance(reply["timestamp"], float)
    status = await wait_bars(api, 5)
    assert status["throttle"] == 0.0
    passive_spacing, passive_most, passive_top = await _measure(api, 0.0)

    cfg = STRATEGY.grid
    assert math.isclose(full_spacing, cfg.grid_step_bps, rel_tol=0.1), full_spacing
    assert passive_spacing > full_spacing
    multiplier = STRATEGY.throttle.passive_step_multiplier
    assert math.isclose(passive_spacing / full_spacing, multiplier, rel_tol=0.1)
    assert passive_most <= full_most
    passive_levels = math.ceil(
        max(cfg.grid_levels_long, cfg.grid_levels_short) * STRATEGY.throttle.passive_level_fraction
    )
    assert passive_top < passive_levels <= full_top + 1, (passive_top, full_top)
    samples = parse_prometheus(await api.metrics_text())
    assert value(samples, "hedgegrid_throttle") == 0.0

    back = await api.ok("POST", "/set-throttle", {"throttle": 1.0})
    assert (back["status"], back["previous_throttle"], back["new_throttle"]) == (
        "updated",
        0.0,
        1.0,
    )
    again = await api.ok("POST", "/set-throttle", {"throttle": 1})
    assert (again["status"], again["previous_throttle"]) == ("unchanged", 1.0)
    assert (await api.status())["throttle"] == 1.0


# ---- 4. stop / start ----------------------------------------------------------------------


async def test_stop_pauses_the_grid_and_start_resumes_it(api: Api) -> None:
    await running_with_grid(api)
    stopped = await api.ok("POST", "/stop")
    assert stopped["status"] == "stopped"
    assert (stopped["previous_state"], stopped["trading_state"]) == ("running", "paused")
    assert stopped["cancelled_orders"] > 0
    again = await api.ok("POST", "/stop")
    assert (again["status"], again["cancelled_orders"], again["trading_state"]) == (
        "already_stopped",
        0,
        "paused",
    )

    async def orders() -> dict[str, Any]:
        return await api.ok("GET", "/orders")

    await poll(orders, lambda o: not grid_orders(o), 10, "the grid orders to be cancelled")
    status = await wait_bars(api, 10)
    assert status["running"] is False and status["trading_state"] == "paused"
    ladders = await api.ok("GET", "/ladders")
    assert ladders["long_ladder"] == [] and ladders["short_ladder"] == []
    assert not grid_orders(await orders()), "the grid came back while paused"
    samples = parse_prometheus(await api.metrics_text())
    assert value(samples, "hedgegrid_trading_state", state="paused") == 1.0
    assert value(samples, "hedgegrid_trading_state", state="running") == 0.0

    started = await api.ok("POST", "/start")
    assert (started["status"], started["previous_state"], started["trading_state"]) == (
        "started",
        "paused",
        "running",
    )
    already = await api.ok("POST", "/start")
    assert (already["status"], already["previous_state"]) == ("already_running", "running")
    await poll(orders, lambda o: grid_orders(o), 10, "grid orders after /start")
    assert (await api.status())["running"] is True


# ---- 5. flatten ---------------------------------------------------------------------------


async def test_flatten_both_closes_everything_and_keeps_the_grid_paused(
    api: Api, live: Live
) -> None:
    try:
        await _flatten_both_then_start(api, live)
    except AssertionError as exc:
        # A failed flatten can leave a runaway position behind; the later tests would
        # only time out one after the other, so they fail at once instead.
        live.broken = f"flatten failed: {str(exc)[:300]}"
        raise


async def _flatten_both_then_start(api: Api, live: Live) -> None:
    before = await poll(
        api.status,
        lambda s: s["trading_state"] == "running" and qty(s, "long") + qty(s, "short") > 0,
        30,
        "an open position to flatten",
    )
    posted = len(live.webhook.texts())
    reply = await api.ok("POST", "/flatten", {"side": "both"})
    assert reply["status"] == "flattening" and reply["side"] == "both"
    assert reply["cancelled_orders"] > 0
    assert reply["closing_positions"], reply
    assert set(reply["closing_positions"]) | set(reply["already_closing"]) <= {"LONG", "SHORT"}
    assert reply["trading_state"] in ("flattening", "paused")

    flat = await poll(
        api.status,
        lambda s: s["trading_state"] == "paused" and s["open_orders"] == 0,
        15,
        "flat, paused and no open orders",
    )
    assert qty(flat, "long") == qty(flat, "short") == 0.0
    assert (
        flat["positions"]["long"]["inventory_usdt"]
        == flat["positions"]["short"]["inventory_usdt"]
        == 0
    )
    assert flat["pnl"]["unrealized"] == 0.0
    assert flat["counters"]["flattens"] == before["counters"]["flattens"] + 1

    # The webhook got the flatten's start (who asked, which legs) and its end.
    texts = await live.webhook.arrived(
        lambda t: any(" FLATTEN done: flattened; flatten by " in x for x in t[posted:]),
        15,
        "the flatten's start and end at the webhook",
    )
    started, done = [t for t in texts[posted:] if " FLATTEN " in t][:2]
    assert re.fullmatch(
        r"\[hedgegrid ops-live BTCUSDT-PERP\.BINANCE\] FLATTEN both requested by 127\.0\.0\.1 "
        r"\(req \S+\): closing (?:LONG|SHORT)(?: and SHORT)?, "
        rf"{reply['cancelled_orders']} orders cancelled; trading {reply['trading_state']}",
        started,
    ), started
    assert " and ".join(reply["closing_positions"]) in started
    assert done.endswith("(long 0, short 0); trading paused"), done

    later = await wait_bars(api, 20)
    assert later["trading_state"] == "paused", later["state_reason"]
    assert submitted(later) == submitted(flat), "orders were sent while flattened and paused"
    assert qty(later, "long") == qty(later, "short") == 0.0
    orders = await api.ok("GET", "/orders")
    assert orders["orders"] == [] and orders["count"] == 0

    started = await api.ok("POST", "/start")
    assert (started["status"], started["previous_state"]) == ("started", "paused")

    async def orders_now() -> dict[str, Any]:
        return await api.ok("GET", "/orders")

    await poll(orders_now, lambda o: grid_orders(o), 10, "grid orders after /start")


# ---- 6. bad input -------------------------------------------------------------------------

BIG = 64 * 1024 + 1


async def _chunked_big_body() -> AsyncIterator[bytes]:
    for _ in range(20):
        yield b" " * 4096  # 80 KiB, sent without a Content-Length


BAD_REQUESTS: list[tuple[str, str, dict[str, Any], int, str]] = [
    ("POST", "/set-throttle", {"data": b'{"throttle": 0.5'}, 400, "invalid_json"),
    ("POST", "/set-throttle", {"data": b"\xff\xfe"}, 400, "invalid_json"),
    ("POST", "/set-throttle", {"json_body": {"throttle": "0.5"}}, 400, "invalid_type"),
    ("POST", "/set-throttle", {"json_body": {"throttle": True}}, 400, "invalid_type"),
    ("POST", "/set-throttle", {"json_body": [0.5]}, 400, "invalid_type"),
    ("POST", "/set-throttle", {"json_body": {"throttle": 1.5}}, 400, "out_of_range"),
    ("POST", "/set-throttle", {"json_body": {"throttle": -0.1}}, 400, "out_of_range"),
    ("POST", "/set-throttle", {"json_body": {}}, 400, "missing_field"),
    ("POST", "/set-throttle", {"json_body": {"throttle": 0.5, "x": 1}}, 400, "unknown_field"),
    ("POST", "/flatten", {"json_body": {"side": "sideways"}}, 400, "invalid_side"),
    ("POST", "/flatten", {"json_body": {"side": 1}}, 400, "invalid_type"),
    ("POST", "/flatten", {"json_body": {"side": "both", "force": True}}, 400, "unknown_field"),
    ("POST", "/flatten", {"json_body": {}}, 400, "missing_field"),
    ("POST", "/stop", {"json_body": {"now": True}}, 400, "unknown_field"),
    ("POST", "/start", {"json_body": {"throttle": 0.5}}, 400, "unknown_field"),
    ("GET", "/nope", {}, 404, "not_found"),
    ("POST", "/status/extra", {}, 404, "not_found"),
    ("GET", "/flatten", {}, 405, "method_not_allowed"),
    ("DELETE", "/status", {}, 405, "method_not_allowed"),
    ("PUT", "/set-throttle", {"json_body": {"throttle": 0.5}}, 405, "method_not_allowed"),
    (
        "POST",
        "/set-throttle",
        {"data": b'{"throttle": 0.5, "pad": "' + b"x" * BIG + b'"}'},
        413,
        "payload_too_large",
    ),
    ("POST", "/flatten", {"data": "chunked"}, 413, "payload_too_large"),
]


def _control_state(status: dict[str, Any]) -> dict[str, Any]:
    c = status["counters"]
    return {
        "trading_state": status["trading_state"],
        "state_reason": status["state_reason"],
        "throttle": status["throttle"],
        "flattens": c["flattens"],
    }


async def test_bad_requests_get_json_errors_and_change_nothing(api: Api, live: Live) -> None:
    before = await running_with_grid(api)
    replies: list[Reply] = []
    for method, path, kwargs, _, _ in BAD_REQUESTS:
        if kwargs.get("data") == "chunked":
            kwargs = {"data": _chunked_big_body()}
        replies.append(await api.call(method, path, **kwargs))
    after = await api.status()

    problems = []
    for (method, path, _, want_status, want_code), reply in zip(BAD_REQUESTS, replies, strict=True):
        body = reply.body if isinstance(reply.body, dict) else {}
        if (reply.status, body.get("error")) != (want_status, want_code):
            problems.append(f"{method} {path}: {reply.status} {reply.body!r}")
            continue
        if not body.get("detail") or body.get("request_id") != reply.request_id:
            problems.append(f"{method} {path}: incomplete error body {body!r}")
        if reply.headers.get("X-Request-ID") != reply.request_id:
            problems.append(f"{method} {path}: X-Request-ID not echoed")
        if want_status == 405 and method not in ("GET", "POST") and not reply.headers.get("Allow"):
            problems.append(f"{method} {path}: 405 without Allow")
    assert not problems, "\n".join(problems)
    assert _control_state(after) == _control_state(before)
    assert after["running"] is True

    # Every refused command was audited as refused, and none reached the command bus.
    refused = {r.request_id for r in replies if r.method == "POST" and r.path in COMMAND_ROUTES}

    def audited() -> list[dict[str, Any]]:
        path = live.service.log_dir / "audit.log"
        lines = [orjson.loads(ln) for ln in path.read_bytes().splitlines() if ln.strip()]
        return [ln for ln in lines if ln.get("request_id") in refused]

    async def fetch() -> list[dict[str, Any]]:
        return audited()

    lines = await poll(
        fetch, lambda ls: len(ls) >= len(refused), 5, "audit lines of refused commands"
    )
    assert {ln["request_id"] for ln in lines} == refused
    assert all(ln["outcome"] == "invalid" and ln["source"] == "api" for ln in lines), lines

    samples = parse_prometheus(await api.metrics_text())
    assert (
        value(
            samples, "hedgegrid_api_requests_total", route="unmatched", method="GET", status="404"
        )
        >= 1
    )
    assert (
        value(samples, "hedgegrid_api_requests_total", route="/flatten", method="GET", status="405")
        >= 1
    )
    assert (
        value(
            samples,
            "hedgegrid_api_requests_total",
            route="/set-throttle",
            method="POST",
            status="413",
        )
        >= 1
    )


# ---- 7. no key configured -----------------------------------------------------------------


async def test_without_a_configured_key_every_route_is_open(api: Api) -> None:
    await running_with_grid(api)
    for key in (None, "some-key-nobody-configured"):
        for path in ("/health", "/status", "/ladders", "/orders", "/metrics", "/openapi.json"):
            reply = await api.get(path, key=key)
            assert reply.status == 200, (path, key, reply.status, reply.body)
        throttle = await api.post("/set-throttle", {"throttle": 1.0}, key=key)
        assert throttle.status == 200 and throttle.json()["status"] == "unchanged"
        start = await api.post("/start", key=key)
        assert start.status == 200 and start.json()["status"] == "already_running"
    stop = await api.post("/stop", key=None)
    assert stop.status == 200 and stop.json()["status"] == "stopped"
    start = await api.post("/start", key="another-unconfigured-key")
    assert start.status == 200 and start.json()["status"] == "started"


# ---- 8. a fast feed does not starve the handlers ---------------------------------------------


async def test_handlers_keep_answering_while_the_strategy_trades_fast(live: Live) -> None:
    if live.broken:
        pytest.fail(f"the shared service is unusable: {live.broken}")
    journal = live.journal
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        api = Api(live.service.api_url, session, journal)
        first = await running_with_grid(api)
        started = time.monotonic()
        calls = [api.get("/status") for _ in range(100)]
        calls += [api.get("/metrics", url=live.service.metrics_url) for _ in range(50)]
        calls += [api.get("/metrics") for _ in range(50)]
        replies = await asyncio.wait_for(asyncio.gather(*calls), timeout=60)
        elapsed = time.monotonic() - started
        last = await api.status()
        samples = parse_prometheus(await api.metrics_text())
    assert [r.status for r in replies] == [200] * 200
    statuses = [r.json() for r in replies if r.path == "/status"]
    assert all(s["trading_state"] == "running" for s in statuses)
    for text in (r.body for r in replies if r.path == "/metrics"):
        assert "hedgegrid_last_bar_timestamp{" in text
    assert elapsed < 30, f"200 concurrent reads took {elapsed:.1f}s"
    # The strategy kept processing bars while the burst was served.
    assert last["counters"]["bars_processed"] > first["counters"]["bars_processed"]
    assert value(samples, "hedgegrid_event_loop_lag_seconds") < 5.0
    assert (
        value(samples, "hedgegrid_api_requests_total", route="/status", method="GET", status="200")
        >= 100
    )


# ---- 9. logs ------------------------------------------------------------------------------

LOG_FILES = ("api_access.log", "audit.log", "trading.log")


def written_lines(path: Path) -> list[dict[str, Any]]:
    """The complete lines of a log the running service is still writing (the last may be
    half written); the whole files are checked with jq once the service has stopped."""
    *complete, _partial = path.read_bytes().split(b"\n")
    return [orjson.loads(line) for line in complete if line.strip()]


async def test_logs_record_every_request_and_control_action(api: Api, live: Live) -> None:
    # This test's own requests (so it has something to check even when run alone), then
    # the access and audit lines of every request the module has sent so far.
    await running_with_grid(api)
    for path in ("/status", "/ladders", "/orders", "/health", "/no-such-route"):
        await api.get(path)
    await api.post("/set-throttle", {"throttle": 1.0})
    await api.post("/set-throttle", {"throttle": 7})
    await api.post("/flatten", {"side": "sideways"})
    await api.post("/stop")
    await api.post("/start")
    replies = list(live.journal.replies)
    assert len(replies) >= 10
    log_dir = live.service.log_dir

    async def logged() -> dict[str, list[dict[str, Any]]]:
        return {name: written_lines(log_dir / name) for name in LOG_FILES}

    def complete(logs: dict[str, list[dict[str, Any]]]) -> bool:
        seen = {ln["request_id"] for ln in logs["api_access.log"]}
        return all(r.request_id in seen for r in replies)

    logs = await poll(logged, complete, 10, "an access line for every request")
    access = {ln["request_id"]: ln for ln in logs["api_access.log"]}
    for reply in replies:
        line = access[reply.request_id]
        assert line["event"] == "http_request"
        assert (line["method"], line["path"], line["status"]) == (
            reply.method,
            reply.path,
            reply.status,
        ), (line, reply)
        assert line["client"] == "127.0.0.1"
        assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0

    audit: dict[str, list[dict[str, Any]]] = {}
    for ln in logs["audit.log"]:
        audit.setdefault(ln["request_id"], []).append(ln)
    trading_audit = [ln for ln in logs["trading.log"] if ln.get("logger") == "audit"]
    assert len(trading_audit) >= len(logs["audit.log"]), "audit lines also go to trading"
    for reply in replies:
        action = COMMAND_ROUTES.get(reply.path)
        if reply.method != "POST" or action is None or reply.status == 405:
            continue
        lines = audit.get(reply.request_id, [])
        assert len(lines) == 1, (reply, lines)
        line = lines[0]
        assert line["event"] == "control_action" and line["action"] == action
        assert line["client"] == "127.0.0.1" and line["key_used"] is False
        if reply.status == 200:
            assert (line["outcome"], line["source"]) == ("ok", "bus"), line
            assert line["params"] == (reply.sent or {}), (line, reply.sent)
            assert line["result"]["status"] == reply.json()["status"]
        else:
            assert line["outcome"] == "invalid", line


# ---- startup failures ----------------------------------------------------------------------


@pytest.mark.parametrize("flag", ["--api-port", "--prometheus-port"])
def test_a_port_in_use_stops_the_program_before_trading(tmp_path: Path, flag: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        other = "--prometheus-port" if flag == "--api-port" else "--api-port"
        proc = run_program(
            "run",
            "--enable-ops",
            flag,
            str(port),
            other,
            "0" if other == "--api-port" else str(free_port()),
            "--duration",
            "30",
            "--log-dir",
            str(tmp_path / "logs"),
        )
    assert proc.returncode != 0
    message = proc.stderr.strip().splitlines()
    assert len(message) == 1, proc.stderr
    assert f"127.0.0.1:{port}" in message[0] and "address already in use" in message[0]
    assert "Traceback" not in proc.stderr
    assert '"order_submitted"' not in proc.stdout
    trading = (tmp_path / "logs" / "trading.log").read_text()
    assert '"order_submitted"' not in trading and '"strategy_started"' not in trading
    assert '"startup_failed"' in trading

"""GET /fills and /pnl/daily against Nautilus's own fills, across a restart.

A real paper node (strategy, Sandbox venue, ops server on one loop, the history in a
state directory) trades until it has fills, is flattened over HTTP with a known
request id (so its closes carry it), and once paused the child reads every fill
from Nautilus's cache and the API's pages. Then the node is stopped, a second node
is built on the same state directory and its /fills must still list the first run's
fills under the same sequence numbers.

Runs in a child interpreter (Nautilus logging is once per process); the child
reports what it saw, the assertions are made here.
"""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec

from hedgegrid_ops.api import Fills, PnlDaily
from hedgegrid_ops.client_cli import render_fills, render_pnl
from tests.child import drive_in_child, emit_result, paper_options, run_child
from tests.support.polling import until

SPEED = 60.0
MIN_FILLS = 4
REQUEST_ID = "req-history-5b1e9a"
PAGE = 3


def _nautilus_fills(cache: Any, strategy_id: Any) -> list[dict[str, Any]]:
    from nautilus_trader.model.enums import LiquiditySide
    from nautilus_trader.model.events import OrderFilled

    return [
        {
            "trade_id": e.trade_id.value,
            "client_order_id": e.client_order_id.value,
            "venue_order_id": e.venue_order_id.value,
            "side": "BUY" if e.is_buy else "SELL",
            # The exact decimal's nearest float (float(Price) can be one ulp off).
            "price": float(e.last_px.as_decimal()),
            "qty": float(e.last_qty.as_decimal()),
            "commission": float(e.commission.as_decimal()),
            "commission_asset": e.commission.currency.code,
            "liquidity": "maker" if e.liquidity_side == LiquiditySide.MAKER else "taker",
            "time": e.ts_event / 1e9,
        }
        for order in cache.orders(strategy_id=strategy_id)
        for e in order.events
        if isinstance(e, OrderFilled)
    ]


async def _stop(runner: asyncio.Task, state: Any) -> None:
    signal.raise_signal(signal.SIGTERM)  # run_service's own shutdown path
    await asyncio.wait_for(runner, timeout=30)
    state.close()  # commits what is queued, releases the directory


async def _scenario(log_dir: Path, built: list[Any]) -> dict[str, Any]:
    import aiohttp

    from hedgegrid_ops.client import AsyncHedgeGridClient
    from hedgegrid_ops.node import build_service, run_service
    from hedgegrid_ops.snapshot import TradingState
    from hedgegrid_ops.state import StateStore

    loop = asyncio.get_running_loop()
    facts: dict[str, Any] = {}

    async def start() -> tuple[Any, asyncio.Task, str, Any]:
        # As `run` does: open the state directory (its lock, its writer) for this run.
        state = StateStore.open(log_dir / "state")
        options = dataclasses.replace(paper_options(log_dir, SPEED), state=state)
        service = build_service(options, loop)
        built.append(service)
        runner = loop.create_task(run_service(service, None))
        ops = service.ops

        def listening() -> bool:
            try:
                return ops.api_port > 0
            except RuntimeError:
                return False

        assert await until(listening, 60), "the ops server never listened"
        return service, runner, ops.api_url, state

    # -- first run: trade, flatten with a known request id, read everything ------------------
    service, runner, url, state = await start()
    strategy, cache = service.strategy, service.node.cache
    try:
        facts["got_fills"] = await until(
            lambda: len(_nautilus_fills(cache, strategy.id)) >= MIN_FILLS, 120
        )
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"{url}/flatten", json={"side": "both"}, headers={"X-Request-ID": REQUEST_ID}
            ) as resp:
                facts["flatten_status"] = resp.status
            facts["paused"] = await until(
                lambda: (
                    strategy.trading_state is TradingState.PAUSED
                    and not cache.positions_open(strategy_id=strategy.id)
                    and not cache.orders_inflight(strategy_id=strategy.id)
                ),
                60,
            )
            service.history.flush()
            facts["nautilus"] = _nautilus_fills(cache, strategy.id)
            facts["flatten_closes"] = [
                o.client_order_id.value
                for o in cache.orders(strategy_id=strategy.id)
                if any(t == f"request_id={REQUEST_ID}" for t in o.tags or ())
            ]
            facts["status_realized"] = service.store.latest.realized_pnl
            async with AsyncHedgeGridClient(url, session=http) as client:
                facts["all"] = msgspec.to_builtins(await client.get_fills(limit=1000))
                pages, before = [], None
                while True:
                    page = await client.get_fills(before=before, limit=PAGE)
                    pages.append(msgspec.to_builtins(page))
                    if page.next_before is None:
                        break
                    before = page.next_before
                facts["pages"] = pages
                middle = facts["all"]["fills"][len(facts["all"]["fills"]) // 2]["time"]
                facts["since"] = middle
                facts["since_page"] = msgspec.to_builtins(
                    await client.get_fills(since=middle, limit=1000)
                )
                facts["daily"] = msgspec.to_builtins(await client.get_pnl_daily())
            bad = {}
            for query in (
                "limit=0",
                "limit=1001",
                "limit=ten",
                "since=-1",
                "color=red",
                "limit=5&limit=6",
                "since=null",
            ):
                async with http.get(f"{url}/fills?{query}") as resp:
                    bad[query] = {"status": resp.status, "body": await resp.json()}
            facts["bad"] = bad
    finally:
        await _stop(runner, state)

    # -- second run on the same state directory ----------------------------------------------
    service, runner, url, state = await start()
    try:
        async with AsyncHedgeGridClient(url) as client:
            facts["after_restart"] = msgspec.to_builtins(await client.get_fills(limit=1000))
            facts["daily_after_restart"] = msgspec.to_builtins(await client.get_pnl_daily())
    finally:
        await _stop(runner, state)
    return facts


if __name__ == "__main__":
    emit_result(drive_in_child(_scenario, Path(sys.argv[1])))


# ---- the test -------------------------------------------------------------------------------

KEYS = ("trade_id", "client_order_id", "venue_order_id", "side", "price", "qty")
KEYS += ("commission", "commission_asset", "liquidity", "time")


def _key(fill: dict[str, Any]) -> tuple:
    return tuple(fill[k] for k in KEYS)


def test_fills_and_daily_pnl_match_nautilus_and_survive_a_restart() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        facts = run_child("tests.integration.test_fill_history", tmp)
    assert facts["got_fills"], "the strategy never filled"
    assert facts["flatten_status"] == 200
    assert facts["paused"], "the flatten never left the strategy paused and flat"

    # Every fill Nautilus has, exactly once, with its ids, price, qty and commission.
    fills = facts["all"]["fills"]
    nautilus = facts["nautilus"]
    assert len(nautilus) >= MIN_FILLS
    assert sorted(map(_key, fills)) == sorted(map(_key, nautilus))
    assert facts["all"]["count"] == len(fills) and facts["all"]["next_before"] is None
    # Newest first.
    seqs = [f["seq"] for f in fills]
    assert seqs == sorted(seqs, reverse=True) and len(set(seqs)) == len(seqs)
    assert [f["time"] for f in fills] == sorted((f["time"] for f in fills), reverse=True)
    # The flatten's closes carry its request id; no other fill does.
    closes = set(facts["flatten_closes"])
    assert closes, "the flatten sent no close (both legs were flat?)"
    for f in fills:
        assert (f["request_id"] == REQUEST_ID) == (f["client_order_id"] in closes), f
    assert any(f["request_id"] == REQUEST_ID for f in fills)

    # Pages of PAGE concatenate to the whole list; each but the last is full.
    pages = facts["pages"]
    assert [f for p in pages for f in p["fills"]] == fills
    assert all(p["count"] == PAGE for p in pages[:-1]) and 1 <= pages[-1]["count"] <= PAGE
    assert all(p["next_before"] == p["fills"][-1]["seq"] for p in pages[:-1])
    # since: exactly the fills at or after that time.
    since = facts["since"]
    assert facts["since_page"]["fills"] == [f for f in fills if f["time"] >= since]

    # Realized PnL per fill adds up to what /status reports (all positions are closed).
    total_realized = sum(f["realized_pnl"] for f in fills)
    assert abs(total_realized - facts["status_realized"]) < 1e-6, (
        total_realized,
        facts["status_realized"],
    )
    # /pnl/daily: its sums are /fills' sums, day by day.
    days = facts["daily"]["days"]
    assert days and [d["day"] for d in days] == sorted(d["day"] for d in days)
    assert sum(d["fills"] for d in days) == len(fills)
    assert abs(sum(d["realized_pnl"] for d in days) - total_realized) < 1e-6
    usdt_fees = sum(f["commission"] for f in fills if f["commission_asset"] == "USDT")
    assert abs(sum(d["fees"] for d in days) - usdt_fees) < 1e-9
    by_day: dict[str, int] = {}
    for f in fills:
        day = time.strftime("%Y-%m-%d", time.gmtime(f["time"]))
        by_day[day] = by_day.get(day, 0) + 1
    assert {d["day"]: d["fills"] for d in days if d["fills"]} == by_day

    # Bad query values: a 400 JSON error naming the problem; nothing else answered.
    bad = facts["bad"]
    assert {q: b["status"] for q, b in bad.items()} == dict.fromkeys(bad, 400)
    assert bad["limit=0"]["body"]["error"] == "out_of_range"
    assert bad["limit=1001"]["body"]["error"] == "out_of_range"
    assert bad["since=-1"]["body"]["error"] == "out_of_range"
    assert bad["limit=ten"]["body"]["error"] == "invalid_type"
    assert bad["color=red"]["body"]["error"] == "unknown_field"
    assert bad["since=null"]["body"]["error"] == "invalid_type"  # a query cannot say null
    assert all(b["body"]["request_id"] and b["body"]["detail"] for b in bad.values())

    # After a restart on the same state directory, the first run's fills are all still
    # there, under the same sequence numbers; the day totals include them.
    after = {f["seq"]: f for f in facts["after_restart"]["fills"]}
    assert all(after.get(f["seq"]) == f for f in fills)
    before_days = {d["day"]: d for d in days}
    for d in facts["daily_after_restart"]["days"]:
        if d["day"] in before_days:
            assert d["fills"] >= before_days[d["day"]]["fills"]
    assert sum(d["fills"] for d in facts["daily_after_restart"]["days"]) >= len(fills)

    # The CLI's tables show the same pages (decoded as the client decodes them).
    table = render_fills(msgspec.convert(pages[0], Fills))
    assert all(f["trade_id"] in table for f in pages[0]["fills"])
    assert f"--before {pages[0]['next_before']}" in table
    daily_table = render_pnl(msgspec.convert(facts["daily"], PnlDaily))
    assert all(d["day"] in daily_table for d in days)

"""Flatten, checked against Nautilus's own cache and account, with the service in-process.

``build_service`` / ``run_service`` (what ``python -m hedgegrid_ops run`` uses) run the
node, the strategy and the ops server on this process's loop; the test talks HTTP to
that server from the same loop and, between requests, reads ``node.cache`` and the
portfolio's account directly — the ground truth the snapshots are derived from.

It runs in a fresh interpreter (``python -m tests.integration.test_ops_inprocess``):
Nautilus logging can be initialised once per process, other tests in the pytest
process use a BacktestEngine, and ``node.dispose()`` must run after the loop ended.
The child prints one line of observations; the assertions are made here, in pytest.

Two flatten requests are written on two connections in one synchronous step, so
the server parses both in the same loop iteration and both commands are queued
before the command consumer runs the first: the second one must find the close
orders of the first (``already_closing``) and must not send another.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import signal
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.child import drive_in_child, emit_result, paper_options, run_child
from tests.support.polling import until

ROOT = Path(__file__).resolve().parents[2]
SPEED = 60.0
STARTING_BALANCE = 10000.0


# ---- the child process -----------------------------------------------------------------------


async def _raw_posts(
    port: int, requests: list[tuple[str, dict[str, Any]]], just_before: Callable[[], None]
) -> list[dict]:
    """Send each request on its own connection, all written in one step of the loop.

    ``just_before`` runs in that same step, so what it records is still true when the
    server (on this loop) starts handling the requests.
    """
    conns = [await asyncio.open_connection("127.0.0.1", port) for _ in requests]
    await asyncio.sleep(0.1)  # let the server accept every connection first
    just_before()
    for (_, writer), (path, body) in zip(conns, requests, strict=True):
        payload = json.dumps(body).encode()
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
            + payload
        )
    out = []
    for reader, writer in conns:
        raw = await asyncio.wait_for(reader.read(), timeout=15)
        writer.close()
        head, _, body = raw.partition(b"\r\n\r\n")
        out.append({"status": int(head.split()[1]), "body": json.loads(body)})
    return out


async def _scenario(log_dir: Path, built: list[Any]) -> dict[str, Any]:
    import aiohttp
    from nautilus_trader.model.currencies import USDT
    from nautilus_trader.model.identifiers import Venue

    from hedgegrid_ops.grid.order_ids import parse_client_order_id
    from hedgegrid_ops.grid.types import OrderRole
    from hedgegrid_ops.node import build_service, run_service
    from hedgegrid_ops.snapshot import TradingState
    from tests.support.positions import flipped_legs

    options = paper_options(log_dir, SPEED)
    loop = asyncio.get_running_loop()
    service = build_service(options, loop)
    built.append(service)
    runner = loop.create_task(run_service(service, None))
    ops = service.ops
    assert ops is not None
    node, strategy = service.node, service.strategy
    cache = node.cache
    iid = strategy.instrument_id
    facts: dict[str, Any] = {}

    def listening() -> bool:
        with contextlib.suppress(RuntimeError):
            return ops.api_port > 0
        return False

    def mine(open_only: bool) -> list[Any]:
        orders = cache.orders_open(strategy_id=strategy.id) if open_only else None
        if orders is None:
            orders = cache.orders(strategy_id=strategy.id)
        return list(orders)

    def role(order: Any) -> str:
        tag = parse_client_order_id(order.client_order_id.value)
        return tag.role.value if tag is not None else "foreign"

    def open_legs() -> dict[str, float]:
        return {
            str(p.id).rsplit("-", 1)[1]: float(p.quantity)
            for p in cache.positions_open(instrument_id=iid)
        }

    def not_closed() -> list[str]:
        return [o.client_order_id.value for o in mine(False) if not o.is_closed]

    try:
        assert await until(listening, 30), "the ops server did not start"
        base = ops.api_url
        async with aiohttp.ClientSession() as http:

            async def call(method: str, path: str, body: Any = None) -> tuple[int, Any]:
                async with http.request(method, f"{base}{path}", json=body) as resp:
                    return resp.status, await resp.json()

            facts["both_legs_open"] = await until(lambda: len(open_legs()) == 2, 60)

            # -- two flattens in the same loop iteration ------------------------------------
            def record_legs() -> None:
                facts["legs_at_flatten"] = open_legs()

            replies = await _raw_posts(
                ops.api_port,
                [("/flatten", {"side": "both"}), ("/flatten", {"side": "both"})],
                record_legs,
            )
            facts["flatten_replies"] = replies
            facts["state_after_flatten_commands"] = strategy.trading_state.value

            flat = await until(
                lambda: (
                    strategy.trading_state is TradingState.PAUSED
                    and not open_legs()
                    and not not_closed()
                ),
                15,
            )
            facts["flat_reached"] = flat
            facts["flipped_legs"] = flipped_legs(cache)

            # -- /status against the account and the cache, read back to back -------------
            code, status = await call("GET", "/status")
            account = node.portfolio.account(Venue(iid.venue.value))
            facts["status_code"] = code
            facts["status"] = status
            facts["account"] = {
                "balance_total": float(account.balance_total(USDT)),
                "balance_locked": float(account.balance_locked(USDT)),
            }
            facts["cache_after_flatten"] = {
                "open_legs": open_legs(),
                "not_closed": not_closed(),
                "state": strategy.trading_state.value,
                "reason": strategy.state_reason,
            }

            # -- the grid stays paused bar after bar ------------------------------------------
            bars = strategy.counters.bars_processed
            created = len(mine(False))
            await until(lambda: strategy.counters.bars_processed >= bars + 30, 20)
            facts["after_bars"] = {
                "bars": strategy.counters.bars_processed - bars,
                "orders_created": len(mine(False)) - created,
                "open_orders": [o.client_order_id.value for o in mine(True)],
                "open_legs": open_legs(),
                "state": strategy.trading_state.value,
            }
            _, orders_view = await call("GET", "/orders")
            facts["orders_view_paused"] = orders_view

            # -- /start brings the grid back ----------------------------------------------------
            facts["start"] = await call("POST", "/start")
            facts["grid_back"] = await until(
                lambda: any(role(o) == OrderRole.GRID.value for o in mine(True)), 10
            )
            _, orders_view = await call("GET", "/orders")
            facts["orders_view_running"] = orders_view
    finally:
        signal.raise_signal(signal.SIGTERM)  # run_service's own shutdown path
        await asyncio.wait_for(runner, timeout=30)
    return facts

    return facts


# ---- the test -------------------------------------------------------------------------------


def _run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        return run_child("tests.integration.test_ops_inprocess", tmp)


def test_flatten_leaves_nautilus_flat_and_the_grid_paused_until_start() -> None:
    facts = _run()
    assert facts["both_legs_open"], "never had a LONG and a SHORT position open at once"
    legs = sorted(facts["legs_at_flatten"])  # open when the two requests were written
    assert legs, "no position left to flatten"

    # One flatten closes, the other sees the closes in flight and sends nothing.
    first, second = facts["flatten_replies"]
    assert first["status"] == second["status"] == 200, facts["flatten_replies"]
    bodies = sorted((r["body"] for r in (first, second)), key=lambda b: len(b["closing_positions"]))
    waiting, closing = bodies
    # Market data keeps flowing between reading the legs and running the command, so
    # the legs the first flatten closed are taken from its answer (it saw the cache).
    closed_legs = sorted(closing["closing_positions"])
    assert closed_legs and closing["already_closing"] == []
    assert waiting["closing_positions"] == [] and sorted(waiting["already_closing"]) == closed_legs
    assert all(b["status"] == "flattening" for b in bodies)
    # A close waits until the leg's exits are cancelled (they could still fill, and a
    # close beside them could flip the leg), so how many closes a leg needs depends on
    # timing: none when its own take profit fills meanwhile, several after partial fills.
    # What must hold: replayed fill by fill, no leg ever crossed zero.
    assert facts["flipped_legs"] == [], facts["flipped_legs"]

    # Nautilus's cache: nothing open, nothing in flight, strategy paused.
    after = facts["cache_after_flatten"]
    assert facts["flat_reached"], after
    assert after["open_legs"] == {} and after["not_closed"] == [] and after["state"] == "paused"

    # /status says what the cache and the account say.
    assert facts["status_code"] == 200
    status = facts["status"]
    assert status["trading_state"] == "paused" and status["running"] is False
    for side in ("long", "short"):
        assert status["positions"][side]["quantity"] == 0.0
        assert status["positions"][side]["inventory_usdt"] == 0.0
    assert status["open_orders"] == 0
    account = facts["account"]
    assert math.isclose(status["balance_usdt"], account["balance_total"], abs_tol=1e-9)
    assert math.isclose(status["margin_used_usdt"], account["balance_locked"], abs_tol=1e-9)
    assert math.isclose(status["equity_usdt"], status["balance_usdt"], abs_tol=1e-9)
    assert status["balance_usdt"] != STARTING_BALANCE
    # Flat: everything earned (fees included) is realized and sits in the balance.
    assert math.isclose(
        status["balance_usdt"] - STARTING_BALANCE, status["pnl"]["realized"], abs_tol=1e-6
    )
    assert status["counters"]["flattens"] == 2

    # Bars keep coming, the grid stays paused: no order at all is created.
    later = facts["after_bars"]
    assert later["bars"] >= 30
    assert later["orders_created"] == 0 and later["open_orders"] == [] and later["open_legs"] == {}
    assert later["state"] == "paused"
    assert facts["orders_view_paused"]["orders"] == []

    code, started = facts["start"]
    assert code == 200 and (started["status"], started["previous_state"]) == ("started", "paused")
    assert facts["grid_back"], "no grid order in the cache after /start"
    assert any(o["role"] == "grid" for o in facts["orders_view_running"]["orders"])
    # The second flatten must leave the first one's close orders alone (no cancel either).
    assert waiting["cancelled_orders"] == 0, waiting


if __name__ == "__main__":  # the child: python -m tests.integration.test_ops_inprocess DIR
    result = drive_in_child(_scenario, Path(sys.argv[1]))
    emit_result(result)

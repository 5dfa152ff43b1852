"""Nautilus's Binance adapter through the exchange's fault switches, then a restart.

Child 1 (``faults``) opens a position and a resting order, then: all WebSockets
dropped (quotes resume, the user stream comes back and fills arrive), the
listenKey expired (a new key, fills arrive), the next order failed with 429/-1003
and rejected with -2019 (both OrderRejected), the market paused (no quotes) and
resumed. Child 2 (``reconcile``) is a fresh node against the same running
exchange: reconciliation must find the position and the resting order there.
"""

from __future__ import annotations

import asyncio
import sys
from decimal import Decimal
from typing import Any

from nautilus_trader.model.enums import OrderSide, OrderStatus

from tests.child import emit_result, run_child
from tests.exchange_support import ExchangeProcess, admin
from tests.integration.exchange_node_support import (
    EVENT_TIMEOUT,
    IID,
    LONG_ID,
    Probe,
    Seen,
    run_scenario,
    wait_for,
)


async def _admin(rest_url: str, token: str, path: str, body: dict | None = None) -> Any:
    return await asyncio.to_thread(admin, rest_url, token, path, body)


async def faults_scenario(probe: Probe, seen: Seen, rest_url: str, token: str) -> dict:
    cache, fac = probe.cache, probe.order_factory
    inst = cache.instrument(IID)
    bid = cache.quote_tick(IID).bid_price.as_double()

    async def market_buy(qty: float, what: str):
        order = fac.market(IID, OrderSide.BUY, inst.make_qty(qty))
        probe.submit_order(order, position_id=LONG_ID)
        done = (OrderStatus.FILLED, OrderStatus.REJECTED)
        await wait_for(lambda: order.status in done, 30, what, seen)
        return order

    resting = fac.limit(
        IID, OrderSide.BUY, inst.make_qty(0.01), inst.make_price(bid * 0.9), post_only=True
    )
    probe.submit_order(resting, position_id=LONG_ID)
    await wait_for(
        lambda: resting.status == OrderStatus.ACCEPTED, EVENT_TIMEOUT, "resting accepted", seen
    )
    opened = await market_buy(0.02, "open")

    async def user_stream_back() -> None:
        """Until the adapter's user stream is connected on the exchange's active key
        (events sent while it reconnects are lost, as on Binance, and only come back
        through reconciliation)."""
        while True:
            await asyncio.sleep(0.5)
            status = await _admin(rest_url, token, "/admin/status")
            if status["user_streams_on_active_key"] == 1:
                return

    # 1. Every WebSocket dropped: market data and the user stream reconnect.
    quotes = seen.counts["quote"]
    dropped = (await _admin(rest_url, token, "/admin/ws/drop"))["dropped"]
    await wait_for(lambda: seen.counts["quote"] > quotes + 10, 30, "quotes after drop", seen)
    await asyncio.wait_for(user_stream_back(), 30)
    after_drop = await market_buy(0.01, "fill after drop")

    # 2. listenKey expired: the adapter takes a new key and reconnects the user stream.
    expired = (await _admin(rest_url, token, "/admin/listen-key/expire"))["expired"]
    await asyncio.wait_for(user_stream_back(), 30)
    after_expiry = await market_buy(0.01, "fill after listenKey expiry")

    # 3. Injected REST failures surface as OrderRejected with Binance's code.
    await _admin(
        rest_url,
        token,
        "/admin/fail",
        {"path": "/fapi/v1/order", "method": "POST", "status": 429, "code": -1003},
    )
    throttled = await market_buy(0.01, "429 reject")
    await _admin(rest_url, token, "/admin/reject-next-order", {"code": -2019})
    no_margin = await market_buy(0.01, "-2019 reject")

    # 4. A paused market is a stale feed: no quotes until it resumes.
    await _admin(rest_url, token, "/admin/market/pause")
    await asyncio.sleep(0.5)
    frozen = seen.counts["quote"]
    await asyncio.sleep(1.5)
    quotes_while_paused = seen.counts["quote"] - frozen
    await _admin(rest_url, token, "/admin/market/resume")
    await wait_for(lambda: seen.counts["quote"] > frozen + 3, 20, "quotes after resume", seen)

    position = cache.position(LONG_ID)
    return {
        "dropped": dropped,
        "expired": expired,
        "statuses": [
            o.status.name for o in (opened, after_drop, after_expiry, throttled, no_margin)
        ],
        "rejections": seen.rejections,
        "quotes_while_paused": quotes_while_paused,
        "long_qty": str(position.quantity),
        "resting": {
            "client_id": resting.client_order_id.value,
            "venue_id": resting.venue_order_id.value,
            "status": resting.status.name,
        },
    }


async def reconcile_scenario(probe: Probe, seen: Seen) -> dict:
    cache = probe.cache
    await wait_for(lambda: cache.orders_open() and cache.positions_open(), 20, "reconciled", seen)
    return {
        "open_orders": [
            (o.venue_order_id.value, o.status.name, str(o.quantity)) for o in cache.orders_open()
        ],
        "positions": [(str(p.id), p.side.name, str(p.quantity)) for p in cache.positions_open()],
    }


def test_adapter_survives_every_fault_and_a_restart_finds_its_position() -> None:
    with ExchangeProcess("--speed", "30", "--ticks-per-minute", "30", "--seed", "5") as ex:
        url, ws, token = ex.info["rest_url"], ex.info["ws_url"], ex.info["admin_token"]
        child = "tests.integration.test_exchange_resilience"
        try:
            first = run_child(child, "faults", url, ws, token, timeout=200)
            second = run_child(child, "reconcile", url, ws, token, timeout=120)
        finally:
            # Evidence for any failure below: what the exchange itself recorded.
            orders = ex.rest.ok("GET", "/fapi/v1/allOrders", {"symbol": "BTCUSDT"})
            trades = ex.rest.ok("GET", "/fapi/v1/userTrades", {"symbol": "BTCUSDT"})
            evidence = {
                "orders": [(o["clientOrderId"], o["status"], o["executedQty"]) for o in orders],
                "trades": [(t["orderId"], t["id"], t["qty"]) for t in trades],
                "exchange_log": ex.stderr()[-3000:],
            }
            print(evidence)
        risk = {
            r["positionSide"]: r["positionAmt"] for r in ex.rest.ok("GET", "/fapi/v3/positionRisk")
        }

    assert first["dropped"] >= 3  # two market connections + the user stream
    assert first["expired"] is True
    assert first["statuses"] == ["FILLED", "FILLED", "FILLED", "REJECTED", "REJECTED"]
    throttled, no_margin = first["rejections"]
    assert "-1003" in throttled["reason"] and "-2019" in no_margin["reason"]
    assert first["quotes_while_paused"] == 0
    assert Decimal(first["long_qty"]) == Decimal("0.040") == Decimal(risk["LONG"]), evidence

    resting = first["resting"]
    assert second["open_orders"] == [[resting["venue_id"], "ACCEPTED", "0.010"]]
    assert second["positions"] == [[str(LONG_ID), "LONG", "0.040"]]


if __name__ == "__main__":
    mode, rest_url, ws_url, token = sys.argv[1:5]
    if mode == "faults":
        result = run_scenario(rest_url, ws_url, lambda p, s: faults_scenario(p, s, rest_url, token))
    else:
        result = run_scenario(rest_url, ws_url, reconcile_scenario)
    emit_result(result)

"""Both clients against the real API app (in-process, real socket), decoding into the api Structs.

Every behaviour is checked for the blocking client (run in a worker thread, so the
server keeps running on the loop) and for the asyncio client, through one ``call``
helper, so the twins cannot drift apart. Answers the real app never gives (a proxy's
HTML page, a non-JSON 200, a slow reply, a newer server's extra field) come from
``tests.support.canned``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest

from hedgegrid_ops.api import (
    FlattenResult,
    Health,
    Ladders,
    Orders,
    StartResult,
    Status,
    StopResult,
    ThrottleResult,
)
from hedgegrid_ops.client import (
    AsyncHedgeGridClient,
    HedgeGridAPIError,
    HedgeGridClient,
    HedgeGridClientError,
    HedgeGridConnectionError,
)
from hedgegrid_ops.grid.types import PositionSide
from hedgegrid_ops.ops.views import ladders_view, orders_view, status_view
from hedgegrid_ops.snapshot import TradingState
from tests.support.canned import Canned, CannedServer
from tests.support.inprocess import API_KEY, StateTarget, make_snapshot, serve_ops
from tests.support.ports import free_port

KINDS = ["sync", "async"]


async def call(
    kind: str, url: str, method: str, *args: Any, api_key: str | None = None, timeout: float = 5.0
) -> Any:
    if kind == "sync":
        client = HedgeGridClient(url, api_key=api_key, timeout=timeout)
        return await asyncio.to_thread(getattr(client, method), *args)
    async with AsyncHedgeGridClient(url, api_key=api_key, timeout=timeout) as aclient:
        return await getattr(aclient, method)(*args)


# --------------------------------------------------------------------------- queries


@pytest.mark.parametrize("kind", KINDS)
async def test_reads_decode_into_the_servers_structs(kind: str, tmp_path: Path) -> None:
    snap = make_snapshot(throttle=0.4)
    async with serve_ops(tmp_path, snapshot=snap) as ops:
        status = await call(kind, ops.url, "get_status")
        ladders = await call(kind, ops.url, "get_ladders")
        orders = await call(kind, ops.url, "get_orders")
    assert isinstance(status, Status) and isinstance(ladders, Ladders)
    assert isinstance(orders, Orders)
    # what the client decoded is exactly what the server built from the snapshot
    assert status == status_view(snap)
    assert ladders == ladders_view(snap)
    assert orders == orders_view(snap)
    # the operations guide's usage example
    assert status.pnl.total == snap.realized_pnl + snap.unrealized_pnl
    assert status.positions.short.unrealized_pnl == snap.short.unrealized_pnl


@pytest.mark.parametrize("kind", KINDS)
async def test_a_field_a_newer_server_adds_is_ignored(kind: str) -> None:
    body = msgspec.json.encode({**msgspec.to_builtins(status_view(make_snapshot())), "new": 1})
    async with CannedServer({("GET", "/status"): Canned(200, body)}) as server:
        status = await call(kind, server.url, "get_status")
    assert isinstance(status, Status)


@pytest.mark.parametrize("kind", KINDS)
async def test_trailing_slash_in_base_url(kind: str, tmp_path: Path) -> None:
    async with serve_ops(tmp_path, snapshot=make_snapshot()) as ops:
        orders = await call(kind, ops.url + "/", "get_orders")
    assert isinstance(orders, Orders)


# --------------------------------------------------------------------------- /health


@pytest.mark.parametrize("kind", KINDS)
async def test_health_ok(kind: str, tmp_path: Path) -> None:
    async with serve_ops(tmp_path, snapshot=make_snapshot()) as ops:
        health = await call(kind, ops.url, "get_health")
    assert isinstance(health, Health)
    assert (health.status, health.trading_state) == ("healthy", "running")
    assert health.reason is msgspec.UNSET


@pytest.mark.parametrize("kind", KINDS)
async def test_health_503_is_returned_not_raised(kind: str, tmp_path: Path) -> None:
    snap = make_snapshot(trading_state=TradingState.HALTED, state_reason="node stopping")
    async with serve_ops(tmp_path, snapshot=snap) as ops:
        health = await call(kind, ops.url, "get_health")
    assert (health.status, health.trading_state) == ("down", "halted")
    assert health.reason == "trading is halted: node stopping"


@pytest.mark.parametrize("kind", KINDS)
async def test_health_503_without_health_shape_is_an_error(kind: str) -> None:
    body = b'{"error": "unavailable", "detail": "shutting down", "request_id": "r1"}'
    async with CannedServer({("GET", "/health"): Canned(503, body)}) as server:
        with pytest.raises(HedgeGridAPIError) as info:
            await call(kind, server.url, "get_health")
    assert (info.value.status, info.value.error, info.value.request_id) == (
        503,
        "unavailable",
        "r1",
    )


@pytest.mark.parametrize("kind", KINDS)
async def test_health_is_open_even_with_a_key_configured(kind: str, tmp_path: Path) -> None:
    async with serve_ops(tmp_path, api_key=API_KEY, snapshot=make_snapshot()) as ops:
        health = await call(kind, ops.url, "get_health")
    assert health.status == "healthy"


# --------------------------------------------------------------------------- commands


@pytest.mark.parametrize("kind", KINDS)
async def test_flatten_sends_the_side(kind: str, tmp_path: Path) -> None:
    target = StateTarget(positions={"LONG": 0.1, "SHORT": 0.0})
    async with serve_ops(tmp_path, target=target) as ops:
        short = await call(kind, ops.url, "flatten", "short")
        both = await call(kind, ops.url, "flatten")
    assert isinstance(short, FlattenResult)
    assert (short.side, short.closing_positions) == ("short", [])
    assert (both.side, both.closing_positions) == ("both", [PositionSide.LONG])
    assert [(name, arg) for name, arg, _ in target.calls] == [
        ("flatten", "short"),
        ("flatten", "both"),
    ]


@pytest.mark.parametrize("kind", KINDS)
async def test_set_throttle_round_trip(kind: str, tmp_path: Path) -> None:
    target = StateTarget(throttle=0.75)
    async with serve_ops(tmp_path, target=target) as ops:
        first = await call(kind, ops.url, "set_throttle", 0.5)
        again = await call(kind, ops.url, "set_throttle", 0.5)
    assert isinstance(first, ThrottleResult)
    assert (first.status, first.previous_throttle, first.new_throttle) == ("updated", 0.75, 0.5)
    assert again.status == "unchanged"
    assert target.throttle == 0.5


@pytest.mark.parametrize("kind", KINDS)
async def test_start_and_stop(kind: str, tmp_path: Path) -> None:
    target = StateTarget(state=TradingState.RUNNING)
    async with serve_ops(tmp_path, target=target) as ops:
        stopped = await call(kind, ops.url, "stop")
        stopped_again = await call(kind, ops.url, "stop")
        started = await call(kind, ops.url, "start")
    assert isinstance(stopped, StopResult) and isinstance(started, StartResult)
    assert (stopped.status, stopped.previous_state, stopped.trading_state) == (
        "stopped",
        TradingState.RUNNING,
        TradingState.PAUSED,
    )
    assert stopped_again.status == "already_stopped"
    assert (started.status, started.trading_state) == ("started", TradingState.RUNNING)
    assert [name for name, _, _ in target.calls] == ["stop", "stop", "start"]


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("kind", KINDS)
async def test_api_key_is_sent_and_required(kind: str, tmp_path: Path) -> None:
    async with serve_ops(tmp_path, api_key=API_KEY, snapshot=make_snapshot()) as ops:
        ok = await call(kind, ops.url, "get_orders", api_key=API_KEY)
        with pytest.raises(HedgeGridAPIError) as info:
            await call(kind, ops.url, "get_orders")
    assert ok.count == len(ok.orders)
    err = info.value
    assert (err.status, err.error, err.detail) == (401, "unauthorized", "missing X-API-Key header")
    assert err.request_id
    assert isinstance(err, HedgeGridClientError)
    assert str(err) == "missing X-API-Key header (HTTP 401 unauthorized)"


@pytest.mark.parametrize("kind", KINDS)
async def test_conflict_and_validation_errors(kind: str, tmp_path: Path) -> None:
    async with serve_ops(tmp_path, target=StateTarget(state=TradingState.HALTED)) as ops:
        with pytest.raises(HedgeGridAPIError) as conflict:
            await call(kind, ops.url, "start")
        with pytest.raises(HedgeGridAPIError) as out_of_range:
            await call(kind, ops.url, "set_throttle", 1.5)
        with pytest.raises(HedgeGridAPIError) as bad_side:
            await call(kind, ops.url, "flatten", "sideways")
    assert (conflict.value.status, conflict.value.error) == (409, "conflict")
    assert (out_of_range.value.status, out_of_range.value.error) == (400, "out_of_range")
    assert (bad_side.value.status, bad_side.value.error) == (400, "invalid_side")


@pytest.mark.parametrize("kind", KINDS)
async def test_non_json_error_page(kind: str) -> None:
    page = Canned(502, b"<html>Bad Gateway</html>", content_type="text/html")
    async with CannedServer({("GET", "/status"): page}) as server:
        with pytest.raises(HedgeGridAPIError) as info:
            await call(kind, server.url, "get_status")
    assert (info.value.status, info.value.error) == (502, "http_error")
    assert "Bad Gateway" in info.value.detail


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b"", b'{"running": true}'])
async def test_ok_status_with_a_body_that_is_not_a_status(kind: str, body: bytes) -> None:
    async with CannedServer({("GET", "/status"): Canned(200, body, "text/plain")}) as server:
        with pytest.raises(HedgeGridAPIError) as info:
            await call(kind, server.url, "get_status")
    assert (info.value.status, info.value.error) == (200, "invalid_response")
    assert "Status" in info.value.detail


@pytest.mark.parametrize("kind", KINDS)
async def test_unknown_route_is_404(kind: str, tmp_path: Path) -> None:
    async with serve_ops(tmp_path, snapshot=make_snapshot()) as ops:
        with pytest.raises(HedgeGridAPIError) as info:
            await call(kind, ops.url + "/prefix", "get_status")
    assert (info.value.status, info.value.error) == (404, "not_found")


@pytest.mark.parametrize("kind", KINDS)
async def test_connection_refused(kind: str) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(HedgeGridConnectionError) as info:
        await call(kind, url, "get_status")
    assert info.value.url == url
    assert info.value.reason
    assert isinstance(info.value, HedgeGridClientError)
    assert not isinstance(info.value, HedgeGridAPIError)


@pytest.mark.parametrize("kind", KINDS)
async def test_timeout_is_a_connection_error(kind: str) -> None:
    body = msgspec.json.encode(status_view(make_snapshot()))
    async with CannedServer({("GET", "/status"): Canned(200, body, delay=1.0)}) as server:
        with pytest.raises(HedgeGridConnectionError) as info:
            await call(kind, server.url, "get_status", timeout=0.2)
    assert "timed out" in info.value.reason


async def test_async_client_closes_its_own_session_only(tmp_path: Path) -> None:
    async with serve_ops(tmp_path, snapshot=make_snapshot()) as ops:
        async with AsyncHedgeGridClient(ops.url) as owned:
            await owned.get_orders()
            session = owned._session
        assert session is not None and session.closed

        async with aiohttp.ClientSession() as shared:
            async with AsyncHedgeGridClient(ops.url, session=shared) as borrowed:
                await borrowed.get_health()
            assert not shared.closed
            health = await AsyncHedgeGridClient(ops.url, session=shared).get_health()
            assert health.status == "healthy"

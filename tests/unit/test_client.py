"""Both clients against a real HTTP server speaking the contract (tests/unit/test_client_fakes.py).

Every behaviour is checked for the blocking client (run in a worker thread, so the
server keeps running on the loop) and for the asyncio client, through one ``call``
helper, so the twins cannot drift apart.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from hedgegrid_ops.client import (
    AsyncHedgeGridClient,
    HedgeGridAPIError,
    HedgeGridClient,
    HedgeGridClientError,
    HedgeGridConnectionError,
)
from tests.unit.test_client_fakes import (
    FakeHedgeGrid,
    health_body,
    ladders_body,
    orders_body,
    status_body,
    unused_port,
)

KINDS = ["sync", "async"]


async def call(
    kind: str, url: str, method: str, *args: Any, api_key: str | None = None, timeout: float = 5.0
) -> Any:
    if kind == "sync":
        client = HedgeGridClient(url, api_key=api_key, timeout=timeout)
        return await asyncio.to_thread(getattr(client, method), *args)
    async with AsyncHedgeGridClient(url, api_key=api_key, timeout=timeout) as aclient:
        return await getattr(aclient, method)(*args)


def without_time(body: dict[str, Any]) -> dict[str, Any]:
    """The fake stamps every answer with the wall clock; compare everything else."""
    return {
        k: v for k, v in body.items() if k not in {"timestamp", "last_bar", "last_bar_event_time"}
    }


# --------------------------------------------------------------------------- queries


@pytest.mark.parametrize("kind", KINDS)
async def test_get_status_returns_the_servers_body(kind: str) -> None:
    async with FakeHedgeGrid(throttle=0.4) as server:
        status = await call(kind, server.url, "get_status")
    expected = status_body("running", throttle=0.4)
    assert without_time(status) == without_time(expected)
    # the operations guide's usage example
    assert status["pnl"]["total"] == expected["pnl"]["total"]
    assert status["positions"]["short"]["unrealized_pnl"] == -20.5
    (recorded,) = server.requests
    assert (recorded.method, recorded.path) == ("GET", "/status")
    assert "X-API-Key" not in recorded.headers


@pytest.mark.parametrize("kind", KINDS)
async def test_ladders_and_orders(kind: str) -> None:
    async with FakeHedgeGrid() as server:
        ladders = await call(kind, server.url, "get_ladders")
        orders = await call(kind, server.url, "get_orders")
    assert ladders["long_ladder"] == ladders_body()["long_ladder"]
    assert ladders["short_ladder"] == ladders_body()["short_ladder"]
    assert orders["orders"] == orders_body()["orders"]
    assert orders["count"] == len(orders["orders"])
    assert [r.path for r in server.requests] == ["/ladders", "/orders"]


@pytest.mark.parametrize("kind", KINDS)
async def test_extra_fields_from_the_server_are_kept(kind: str) -> None:
    async with FakeHedgeGrid() as server:
        body = {**status_body(), "new_field": {"x": 1}}
        server.can("GET", "/status", 200, body)
        status = await call(kind, server.url, "get_status")
    assert status["new_field"] == {"x": 1}


@pytest.mark.parametrize("kind", KINDS)
async def test_trailing_slash_in_base_url(kind: str) -> None:
    async with FakeHedgeGrid() as server:
        await call(kind, server.url + "/", "get_orders")
    assert server.requests[0].path == "/orders"


# --------------------------------------------------------------------------- /health


@pytest.mark.parametrize("kind", KINDS)
async def test_health_ok(kind: str) -> None:
    async with FakeHedgeGrid() as server:
        health = await call(kind, server.url, "get_health")
    assert health["status"] == "healthy"
    assert health["trading_state"] == "running"


@pytest.mark.parametrize("kind", KINDS)
async def test_health_503_is_returned_not_raised(kind: str) -> None:
    async with FakeHedgeGrid(trading_state="halted") as server:
        health = await call(kind, server.url, "get_health")
    assert health["status"] == "down"
    assert health["reason"] == "trading is halted"


@pytest.mark.parametrize("kind", KINDS)
async def test_health_503_without_health_shape_is_an_error(kind: str) -> None:
    async with FakeHedgeGrid() as server:
        server.can("GET", "/health", 503, {"error": "unavailable", "detail": "shutting down"})
        with pytest.raises(HedgeGridAPIError) as info:
            await call(kind, server.url, "get_health")
    assert (info.value.status, info.value.error) == (503, "unavailable")


@pytest.mark.parametrize("kind", KINDS)
async def test_health_is_open_even_with_a_key_configured(kind: str) -> None:
    async with FakeHedgeGrid(api_key="s3cret") as server:
        health = await call(kind, server.url, "get_health")
    assert health["status"] == "healthy"


# --------------------------------------------------------------------------- commands


@pytest.mark.parametrize("kind", KINDS)
async def test_flatten_sends_the_side_as_json(kind: str) -> None:
    async with FakeHedgeGrid(positions={"LONG"}) as server:
        result = await call(kind, server.url, "flatten", "short")
        result_both = await call(kind, server.url, "flatten")
    assert result["side"] == "short"
    assert result["closing_positions"] == []
    assert result_both["side"] == "both"
    assert result_both["closing_positions"] == ["LONG"]
    sent = [r for r in server.requests if r.path == "/flatten"]
    assert [json.loads(r.body) for r in sent] == [{"side": "short"}, {"side": "both"}]
    assert all(r.method == "POST" for r in sent)
    assert all(r.headers["Content-Type"] == "application/json" for r in sent)


@pytest.mark.parametrize("kind", KINDS)
async def test_set_throttle_round_trip(kind: str) -> None:
    async with FakeHedgeGrid(throttle=0.75) as server:
        first = await call(kind, server.url, "set_throttle", 0.5)
        again = await call(kind, server.url, "set_throttle", 0.5)
        status = await call(kind, server.url, "get_status")
    assert (first["status"], first["previous_throttle"], first["new_throttle"]) == (
        "updated",
        0.75,
        0.5,
    )
    assert again["status"] == "unchanged"
    assert status["throttle"] == 0.5
    assert json.loads(server.requests[0].body) == {"throttle": 0.5}


@pytest.mark.parametrize("kind", KINDS)
async def test_start_and_stop(kind: str) -> None:
    async with FakeHedgeGrid(trading_state="running") as server:
        stopped = await call(kind, server.url, "stop")
        stopped_again = await call(kind, server.url, "stop")
        started = await call(kind, server.url, "start")
    assert (stopped["status"], stopped["previous_state"], stopped["trading_state"]) == (
        "stopped",
        "running",
        "paused",
    )
    assert stopped_again["status"] == "already_stopped"
    assert (started["status"], started["trading_state"]) == ("started", "running")
    assert [(r.method, r.path) for r in server.requests] == [
        ("POST", "/stop"),
        ("POST", "/stop"),
        ("POST", "/start"),
    ]


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("kind", KINDS)
async def test_api_key_is_sent_and_required(kind: str) -> None:
    async with FakeHedgeGrid(api_key="s3cret") as server:
        ok = await call(kind, server.url, "get_orders", api_key="s3cret")
        with pytest.raises(HedgeGridAPIError) as info:
            await call(kind, server.url, "get_orders")
    assert ok["count"] == 2
    assert server.requests[0].headers["X-API-Key"] == "s3cret"
    err = info.value
    assert (err.status, err.error) == (401, "unauthorized")
    assert err.detail == "missing or wrong X-API-Key"
    assert err.request_id == "req-2"
    assert isinstance(err, HedgeGridClientError)
    assert str(err) == "missing or wrong X-API-Key (HTTP 401 unauthorized)"


@pytest.mark.parametrize("kind", KINDS)
async def test_conflict_and_validation_errors(kind: str) -> None:
    async with FakeHedgeGrid(trading_state="halted") as server:
        with pytest.raises(HedgeGridAPIError) as conflict:
            await call(kind, server.url, "start")
        with pytest.raises(HedgeGridAPIError) as out_of_range:
            await call(kind, server.url, "set_throttle", 1.5)
        with pytest.raises(HedgeGridAPIError) as bad_side:
            await call(kind, server.url, "flatten", "sideways")
    assert (conflict.value.status, conflict.value.error) == (409, "conflict")
    assert (out_of_range.value.status, out_of_range.value.error) == (400, "out_of_range")
    assert (bad_side.value.status, bad_side.value.error) == (400, "invalid_side")


@pytest.mark.parametrize("kind", KINDS)
async def test_non_json_error_page(kind: str) -> None:
    async with FakeHedgeGrid() as server:
        server.can("GET", "/status", 502, b"<html>Bad Gateway</html>", content_type="text/html")
        with pytest.raises(HedgeGridAPIError) as info:
            await call(kind, server.url, "get_status")
    assert (info.value.status, info.value.error) == (502, "http_error")
    assert "Bad Gateway" in info.value.detail


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b""])
async def test_ok_status_with_a_body_that_is_not_a_json_object(kind: str, body: bytes) -> None:
    async with FakeHedgeGrid() as server:
        server.can("GET", "/status", 200, body, content_type="text/plain")
        with pytest.raises(HedgeGridAPIError) as info:
            await call(kind, server.url, "get_status")
    assert (info.value.status, info.value.error) == (200, "invalid_response")


@pytest.mark.parametrize("kind", KINDS)
async def test_unknown_route_is_404(kind: str) -> None:
    async with FakeHedgeGrid() as server:
        with pytest.raises(HedgeGridAPIError) as info:
            await call(kind, server.url + "/prefix", "get_status")
    assert (info.value.status, info.value.error) == (404, "not_found")


@pytest.mark.parametrize("kind", KINDS)
async def test_connection_refused(kind: str) -> None:
    url = f"http://127.0.0.1:{unused_port()}"
    with pytest.raises(HedgeGridConnectionError) as info:
        await call(kind, url, "get_status")
    assert info.value.url == url
    assert info.value.reason
    assert isinstance(info.value, HedgeGridClientError)
    assert not isinstance(info.value, HedgeGridAPIError)


@pytest.mark.parametrize("kind", KINDS)
async def test_timeout_is_a_connection_error(kind: str) -> None:
    async with FakeHedgeGrid() as server:
        server.can("GET", "/status", 200, status_body(), delay=1.0)
        with pytest.raises(HedgeGridConnectionError) as info:
            await call(kind, server.url, "get_status", timeout=0.2)
    assert "timed out" in info.value.reason


async def test_async_client_closes_its_own_session_only() -> None:
    import aiohttp

    async with FakeHedgeGrid() as server:
        async with AsyncHedgeGridClient(server.url) as owned:
            await owned.get_orders()
            session = owned._session
        assert session is not None and session.closed

        async with aiohttp.ClientSession() as shared:
            async with AsyncHedgeGridClient(server.url, session=shared) as borrowed:
                await borrowed.get_health()
            assert not shared.closed
            assert (await AsyncHedgeGridClient(server.url, session=shared).get_health())[
                "status"
            ] == health_body()["status"]

"""The control API over a real socket: auth, every error status, commands, logs."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from hedgegrid_ops.api import StopResult
from hedgegrid_ops.snapshot import TradingState
from tests.support.inprocess import (
    API_KEY,
    NeverAnswers,
    StateTarget,
    make_snapshot,
    read_log,
    serve_ops,
)

PROTECTED = [
    ("GET", "/status", None),
    ("GET", "/ladders", None),
    ("GET", "/orders", None),
    ("POST", "/start", None),
    ("POST", "/stop", None),
    ("POST", "/flatten", {"side": "both"}),
    ("POST", "/set-throttle", {"throttle": 0.5}),
]
OPEN = ["/health", "/metrics", "/openapi.json", "/docs", "/docs/static/swagger-ui.css"]


def _json_lines(lines: list[str]) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in lines]


# ---- auth --------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "body"), PROTECTED)
async def test_protected_routes_need_the_right_key(
    tmp_path: Path, method: str, path: str, body: Any
) -> None:
    async with serve_ops(
        tmp_path, api_key=API_KEY, target=StateTarget(), snapshot=make_snapshot()
    ) as ops:
        status, missing, headers = await ops.call(method, path, body=body)
        assert status == 401
        assert missing["error"] == "unauthorized"
        assert headers["WWW-Authenticate"] == "X-API-Key"
        for wrong in ("nope", API_KEY[:-1], API_KEY + "x", API_KEY.upper(), ""):
            status, payload, _ = await ops.call(method, path, body=body, key=wrong)
            assert (status, payload["error"]) == (401, "unauthorized"), wrong
        assert ops.target is not None and ops.target.calls == []  # nothing ran unauthorised
        status, _, _ = await ops.call(method, path, body=body, key=API_KEY)
        assert status == 200


@pytest.mark.parametrize("path", OPEN)
async def test_open_routes_need_no_key_even_when_one_is_set(tmp_path: Path, path: str) -> None:
    async with serve_ops(tmp_path, api_key=API_KEY, snapshot=make_snapshot()) as ops:
        status, _, _ = await ops.call("GET", path)
        assert status == 200
        status, _, _ = await ops.call("GET", path, key="wrong")  # a wrong key is ignored there
        assert status == 200


@pytest.mark.parametrize(("method", "path", "body"), PROTECTED)
async def test_without_a_configured_key_everything_is_open(
    tmp_path: Path, method: str, path: str, body: Any
) -> None:
    async with serve_ops(tmp_path, target=StateTarget(), snapshot=make_snapshot()) as ops:
        status, _, _ = await ops.call(method, path, body=body)
        assert status == 200
        status, _, _ = await ops.call(method, path, body=body, key="anything")
        assert status == 200


async def test_unauthorized_command_is_audited_without_the_key(tmp_path: Path) -> None:
    async with serve_ops(tmp_path, api_key=API_KEY, target=StateTarget()) as ops:
        status, body, _ = await ops.call("POST", "/flatten", body={"side": "both"}, key="guess")
    assert status == 401
    audit = _json_lines(read_log(ops.log_dir, "audit.log"))
    assert [a["outcome"] for a in audit] == ["unauthorized"]
    assert audit[0]["action"] == "flatten"
    assert audit[0]["key_used"] is False
    assert audit[0]["request_id"] == body["request_id"]
    assert "guess" not in (ops.log_dir / "audit.log").read_text()


# ---- reads -------------------------------------------------------------------------


async def test_status_reflects_the_latest_snapshot(tmp_path: Path) -> None:
    snap = make_snapshot()
    async with serve_ops(tmp_path, snapshot=snap) as ops:
        status, body, _ = await ops.call("GET", "/status")
        assert status == 200
        assert body["running"] is True
        assert body["trading_state"] == snap.trading_state.value
        assert body["instrument"] == snap.instrument_id
        assert body["positions"]["long"] == {
            "inventory_usdt": snap.long.inventory_usdt,
            "quantity": snap.long.quantity,
            "entry_price": snap.long.entry_price,
            "unrealized_pnl": snap.long.unrealized_pnl,
        }
        assert body["positions"]["short"]["quantity"] == snap.short.quantity
        assert body["pnl"] == {
            "realized": snap.realized_pnl,
            "unrealized": snap.unrealized_pnl,
            "total": snap.realized_pnl + snap.unrealized_pnl,
        }
        assert body["open_orders"] == len(snap.orders)
        fills = snap.counters
        makers = fills.fills_buy_maker + fills.fills_sell_maker
        all_fills = makers + fills.fills_buy_taker + fills.fills_sell_taker
        assert body["maker_ratio"] == pytest.approx(makers / all_fills)
        assert body["counters"]["bars_processed"] == snap.counters.bars_processed
        assert body["counters"]["funding_paid_usdt"] == snap.counters.funding_paid_usdt
        assert body["funding"]["rate"] == snap.funding_rate
        assert body["funding"]["scale_long"] == snap.funding_scale_long
        assert body["uptime"] == pytest.approx(snap.timestamp - snap.started_at)
        assert body["last_bar"] == snap.last_bar_time
        assert body["last_bar_event_time"] == snap.last_bar_event_time

        paused = make_snapshot(trading_state=TradingState.PAUSED, mid_price=None)
        ops.store.publish(paused)
        _, body, _ = await ops.call("GET", "/status")
        assert body["running"] is False
        assert body["trading_state"] == "paused"
        assert body["mid_price"] is None


async def test_ladders_and_orders_list_what_the_snapshot_holds(tmp_path: Path) -> None:
    snap = make_snapshot()
    async with serve_ops(tmp_path, snapshot=snap) as ops:
        _, ladders, _ = await ops.call("GET", "/ladders")
        _, orders, _ = await ops.call("GET", "/orders")
    assert [r["client_order_id"] for r in ladders["long_ladder"]] == [
        r.client_order_id for r in snap.long_ladder
    ]
    assert [(r["price"], r["qty"], r["rung"]) for r in ladders["short_ladder"]] == [
        (r.price, r.qty, r.rung) for r in snap.short_ladder
    ]
    assert ladders["throttle"] == snap.throttle
    assert orders["count"] == len(snap.orders)
    stop = next(o for o in orders["orders"] if o["role"] == "stop_loss")
    expected = next(o for o in snap.orders if o.role == "stop_loss")
    assert stop["trigger_price"] == expected.trigger_price
    assert stop["price"] is None
    assert stop["position_side"] == expected.position_side


@pytest.mark.parametrize("path", ["/status", "/ladders", "/orders"])
async def test_reads_answer_503_before_the_first_snapshot(tmp_path: Path, path: str) -> None:
    async with serve_ops(tmp_path) as ops:
        status, body, headers = await ops.call("GET", path)
    assert status == 503
    assert body["error"] == "unavailable"
    assert body["request_id"] == headers["X-Request-ID"]


# ---- health ------------------------------------------------------------------------


async def test_health_follows_state_and_bar_age(tmp_path: Path) -> None:
    async with serve_ops(tmp_path, max_bar_age=60.0) as ops:
        status, body, _ = await ops.call("GET", "/health")
        assert (status, body["status"]) == (503, "down")
        assert body["last_bar"] is None and body["reason"]

        fresh = make_snapshot(last_bar_time=time.time() - 5.0)
        ops.store.publish(fresh)
        status, body, _ = await ops.call("GET", "/health")
        assert (status, body["status"]) == (200, "healthy")
        assert body["last_bar"] == fresh.last_bar_time
        assert 5.0 <= body["bar_age_seconds"] < 60.0
        assert "reason" not in body

        ops.store.publish(make_snapshot(last_bar_time=time.time() - 61.0))
        status, body, _ = await ops.call("GET", "/health")
        assert (status, body["status"]) == (503, "degraded")
        assert body["bar_age_seconds"] > 60.0

        ops.store.publish(make_snapshot(last_bar_time=None))
        status, body, _ = await ops.call("GET", "/health")
        assert (status, body["status"]) == (503, "degraded")

        ops.store.publish(make_snapshot(trading_state=TradingState.HALTED, state_reason="kill"))
        status, body, _ = await ops.call("GET", "/health")
        assert (status, body["status"], body["trading_state"]) == (503, "down", "halted")
        assert "kill" in body["reason"]

        ops.store.publish(make_snapshot())
        ops.node_up[0] = False
        status, body, _ = await ops.call("GET", "/health")
        assert (status, body["status"]) == (503, "down")


async def test_health_treats_a_failing_node_probe_as_down(tmp_path: Path) -> None:
    def broken() -> bool:
        raise RuntimeError("probe failed")

    async with serve_ops(tmp_path, snapshot=make_snapshot(), node_running=broken) as ops:
        status, body, _ = await ops.call("GET", "/health")
    assert (status, body["status"]) == (503, "down")


# ---- commands ----------------------------------------------------------------------


async def test_commands_reach_the_target_and_are_audited(tmp_path: Path) -> None:
    target = StateTarget(positions={"LONG": 0.05, "SHORT": 0.0})
    async with serve_ops(tmp_path, api_key=API_KEY, target=target) as ops:
        status, body, headers = await ops.call(
            "POST", "/set-throttle", body={"throttle": 0.25}, key=API_KEY
        )
        assert status == 200
        assert body["status"] == "updated"
        assert (body["new_throttle"], body["previous_throttle"]) == (0.25, 1.0)
        assert abs(body["timestamp"] - time.time()) < 5
        throttle_rid = headers["X-Request-ID"]

        status, body, _ = await ops.call(
            "POST", "/set-throttle", body={"throttle": 0.25}, key=API_KEY
        )
        assert body["status"] == "unchanged"

        status, body, _ = await ops.call("POST", "/flatten", body={"side": "both"}, key=API_KEY)
        assert status == 200
        assert body["closing_positions"] == ["LONG"]  # only the side that has a position
        assert body["cancelled_orders"] == 4

        status, body, _ = await ops.call("POST", "/stop", key=API_KEY)
        assert (body["status"], body["previous_state"]) == ("stopped", "flattening")
        status, body, _ = await ops.call("POST", "/stop", body={}, key=API_KEY)
        assert body["status"] == "already_stopped"
        status, body, _ = await ops.call("POST", "/start", key=API_KEY)
        assert (body["status"], body["trading_state"]) == ("started", "running")

    assert [c[0] for c in target.calls] == [
        "set_throttle",
        "set_throttle",
        "flatten",
        "stop",
        "stop",
        "start",
    ]
    assert "127.0.0.1" in target.calls[0][2]  # the strategy learns who asked

    audit = _json_lines(read_log(ops.log_dir, "audit.log"))
    assert [(a["action"], a["outcome"]) for a in audit] == [
        ("set_throttle", "ok"),
        ("set_throttle", "ok"),
        ("flatten", "ok"),
        ("stop", "ok"),
        ("stop", "ok"),
        ("start", "ok"),
    ]
    first = audit[0]
    assert first["params"] == {"throttle": 0.25}
    assert first["result"]["new_throttle"] == 0.25
    assert first["client"] == "127.0.0.1"
    assert first["key_used"] is True
    assert first["request_id"] == throttle_rid
    assert audit[2]["params"] == {"side": "both"}
    for log in ("audit.log", "api_access.log", "trading.log"):
        assert API_KEY not in (ops.log_dir / log).read_text()


BAD_BODIES = [
    ("/flatten", b'{"side": ', "invalid_json"),
    ("/flatten", b"[1, 2]", "invalid_type"),
    ("/flatten", b'{"side": 3}', "invalid_type"),
    ("/flatten", b'{"side": "up"}', "invalid_side"),
    ("/flatten", b'{"side": "LONG"}', "invalid_side"),
    ("/flatten", b"{}", "missing_field"),
    ("/flatten", b"", "missing_field"),
    ("/flatten", b'{"side": "long", "force": true}', "unknown_field"),
    ("/set-throttle", b'{"throttle": "0.5"}', "invalid_type"),
    ("/set-throttle", b'{"throttle": true}', "invalid_type"),
    ("/set-throttle", b'{"throttle": null}', "invalid_type"),
    ("/set-throttle", b'{"throttle": 1.5}', "out_of_range"),
    ("/set-throttle", b'{"throttle": -0.01}', "out_of_range"),
    ("/set-throttle", b'{"throttle": NaN}', "invalid_json"),
    ("/set-throttle", b"{}", "missing_field"),
    ("/set-throttle", b'{"throttle": 0.5, "x": 1}', "unknown_field"),
    ("/start", b'{"force": true}', "unknown_field"),
    ("/stop", b'"stop"', "invalid_type"),
    ("/stop", b"\xff\xfe", "invalid_json"),
]


@pytest.mark.parametrize(("path", "raw", "code"), BAD_BODIES)
async def test_bad_bodies_are_rejected_before_anything_runs(
    tmp_path: Path, path: str, raw: bytes, code: str
) -> None:
    target = StateTarget()
    async with serve_ops(tmp_path, target=target) as ops:
        status, body, headers = await ops.call("POST", path, raw=raw)
    assert status == 400
    assert body["error"] == code
    assert body["detail"]
    assert body["request_id"] == headers["X-Request-ID"]
    assert target.calls == []
    audit = _json_lines(read_log(ops.log_dir, "audit.log"))
    assert [a["outcome"] for a in audit] == ["invalid"]


async def test_boundary_throttles_are_accepted(tmp_path: Path) -> None:
    target = StateTarget(throttle=0.5)
    async with serve_ops(tmp_path, target=target) as ops:
        for value in (0, 1, 0.0, 1.0):
            status, body, _ = await ops.call("POST", "/set-throttle", body={"throttle": value})
            assert status == 200, value
            assert body["new_throttle"] == float(value)
    assert target.throttle == 1.0


async def test_conflict_answers_409(tmp_path: Path) -> None:
    target = StateTarget(state=TradingState.HALTED)
    async with serve_ops(tmp_path, target=target) as ops:
        status, body, _ = await ops.call("POST", "/start")
    assert status == 409
    assert body["error"] == "conflict"
    assert "halted" in body["detail"]
    audit = _json_lines(read_log(ops.log_dir, "audit.log"))
    assert [a["outcome"] for a in audit] == ["conflict"]


async def test_target_failure_answers_500_without_internals(tmp_path: Path) -> None:
    target = StateTarget(fail_with=RuntimeError("db password is hunter2"))
    async with serve_ops(tmp_path, target=target) as ops:
        status, body, headers = await ops.call("POST", "/stop")
    assert status == 500
    assert body["error"] == "internal_error"
    assert body["request_id"] == headers["X-Request-ID"]
    assert "hunter2" not in orjson.dumps(body).decode()
    assert "Traceback" not in body["detail"]
    trading = _json_lines(read_log(ops.log_dir, "trading.log"))
    failure = next(line for line in trading if line["event"] == "unhandled_error")
    assert failure["request_id"] == body["request_id"]
    assert "hunter2" in failure["exception"]  # the operator still gets the cause, in the log


async def test_a_target_answering_the_wrong_struct_is_a_500(tmp_path: Path) -> None:
    class Sloppy(StateTarget):
        def control_start(self, reason: str) -> Any:
            return StopResult(
                status="stopped",
                previous_state=self.state,
                trading_state=self.state,
                cancelled_orders=0,
            )

    async with serve_ops(tmp_path, target=Sloppy()) as ops:
        status, body, _ = await ops.call("POST", "/start")
    assert (status, body["error"]) == (500, "internal_error")


async def test_commands_answer_503_without_a_strategy(tmp_path: Path) -> None:
    async with serve_ops(tmp_path, target=None) as ops:
        status, body, _ = await ops.call("POST", "/flatten", body={"side": "long"})
    assert (status, body["error"]) == (503, "unavailable")
    audit = _json_lines(read_log(ops.log_dir, "audit.log"))
    assert [(a["outcome"], a["params"]) for a in audit] == [("unavailable", {"side": "long"})]


async def test_unanswered_command_times_out_with_504(tmp_path: Path) -> None:
    target = StateTarget(fail_with=NeverAnswers())
    async with serve_ops(tmp_path, target=target, command_timeout=0.2) as ops:
        started = time.monotonic()
        status, body, _ = await ops.call("POST", "/set-throttle", body={"throttle": 0.1})
        waited = time.monotonic() - started
    assert (status, body["error"]) == (504, "timeout")
    assert 0.2 <= waited < 2.0
    audit = _json_lines(read_log(ops.log_dir, "audit.log"))
    assert [a["outcome"] for a in audit] == ["expired"]


# ---- protocol errors ---------------------------------------------------------------


async def test_unknown_path_is_404_json(tmp_path: Path) -> None:
    async with serve_ops(tmp_path, api_key=API_KEY) as ops:
        status, body, headers = await ops.call("GET", "/does-not-exist")
    assert (status, body["error"]) == (404, "not_found")
    assert body["request_id"] == headers["X-Request-ID"]


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [("DELETE", "/status", "GET"), ("GET", "/flatten", "POST"), ("PUT", "/health", "GET")],
)
async def test_wrong_method_is_405_json(
    tmp_path: Path, method: str, path: str, allowed: str
) -> None:
    async with serve_ops(tmp_path, api_key=API_KEY) as ops:
        status, body, headers = await ops.call(method, path, key=API_KEY)
    assert (status, body["error"]) == (405, "method_not_allowed")
    assert headers["Allow"] == allowed


async def test_oversized_body_is_413(tmp_path: Path) -> None:
    target = StateTarget()
    big = b'{"side": "long", "pad": "' + b"x" * (70 * 1024) + b'"}'
    async with serve_ops(tmp_path, target=target) as ops:
        status, body, _ = await ops.call("POST", "/flatten", raw=big)
        assert (status, body["error"]) == (413, "payload_too_large")

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: caught while reading
            for _ in range(80):
                yield b" " * 1024

        async with ops.http.post(
            ops.url + "/flatten", data=chunks(), headers={"Content-Type": "application/json"}
        ) as resp:
            assert resp.status == 413
            assert (await resp.json())["error"] == "payload_too_large"
    assert target.calls == []


# ---- request ids and the access log ------------------------------------------------


async def test_request_ids_are_echoed_or_generated(tmp_path: Path) -> None:
    async with serve_ops(tmp_path, snapshot=make_snapshot()) as ops:
        _, _, headers = await ops.call("GET", "/status", headers={"X-Request-ID": "abc-123"})
        assert headers["X-Request-ID"] == "abc-123"
        _, _, headers = await ops.call("GET", "/status", headers={"X-Request-ID": "bad id\t<x>"})
        assert headers["X-Request-ID"] not in ("", "bad id\t<x>")
        _, _, a = await ops.call("GET", "/nope")
        _, _, b = await ops.call("GET", "/nope")
        assert a["X-Request-ID"] != b["X-Request-ID"]


async def test_access_log_is_json_and_never_holds_the_key(tmp_path: Path) -> None:
    async with serve_ops(
        tmp_path, api_key=API_KEY, target=StateTarget(), snapshot=make_snapshot()
    ) as ops:
        await ops.call("GET", "/status", key=API_KEY)
        await ops.call("GET", f"/status?X-API-Key={API_KEY}")  # a key in the URL is not logged
        await ops.call("POST", "/stop", key="wrong-key-value")
        await ops.call("GET", "/health")
        await ops.call("GET", "/missing", key=API_KEY)
    text = (ops.log_dir / "api_access.log").read_text()
    assert API_KEY not in text
    assert "wrong-key-value" not in text
    lines = _json_lines(text.splitlines())
    assert [(x["method"], x["path"], x["status"]) for x in lines] == [
        ("GET", "/status", 200),
        ("GET", "/status", 401),
        ("POST", "/stop", 401),
        ("GET", "/health", 200),
        ("GET", "/missing", 404),
    ]
    for line in lines:
        assert line["event"] == "http_request"
        assert line["client"] == "127.0.0.1"
        assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0.0
        assert len(line["request_id"]) >= 16
        assert line["level"] == "info" and line["timestamp"].endswith("Z")
    assert lines[0]["key_used"] is True and lines[1]["key_used"] is False
    assert lines[4]["route"] == "unmatched"

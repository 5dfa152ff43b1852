"""The control plane under hostile input, over a real socket (see docs/hardening.md).

Each test drives a real ``OpsService`` on an ephemeral loopback port with a real
``StateTarget`` behind the command bus, and checks both the answer and that nothing
ran: a refused request must change nothing.
"""

from __future__ import annotations

import asyncio
import gzip
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from hedgegrid_ops.ops.limits import TokenBuckets, retry_after_header
from hedgegrid_ops.ops.server import host_allowed
from hedgegrid_ops.ops.settings import MIN_KEY_LENGTH, OpsSettings, is_loopback
from tests.support.inprocess import Running, StateTarget, make_snapshot, serve_ops

KEY = "k" * 16 + "0123456789abcdef0123"  # 36 characters: a strong-enough key


def serve(tmp_path: Path, **overrides: Any) -> AbstractAsyncContextManager[Running]:
    """An OpsService with ``overrides`` applied to its settings and a StateTarget attached."""
    return serve_ops(tmp_path, target=StateTarget(), snapshot=make_snapshot(), **overrides)


async def raw_request(port: int, data: bytes, *, read_timeout: float = 5.0) -> tuple[int, bytes]:
    """Send ``data`` as-is on a fresh connection; return (status, body) or (0, b"") if closed."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), read_timeout)
    finally:
        writer.close()
    if not raw:
        return 0, b""
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def access_lines(log_dir: Path) -> list[dict[str, Any]]:
    return [orjson.loads(x) for x in (log_dir / "api_access.log").read_text().splitlines()]


# ---- settings -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.8.9.1", True), ("::1", True), ("localhost", True),
     ("0.0.0.0", False), ("::", False), ("192.168.1.4", False), ("myhost", False)],
)  # fmt: skip
def test_loopback_detection(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_a_key_is_mandatory_off_loopback_and_must_not_be_blank() -> None:
    with pytest.raises(ValueError, match=r"API key is required when listening on 0\.0\.0\.0"):
        OpsSettings(host="0.0.0.0")
    with pytest.raises(ValueError, match="empty or blank"):
        OpsSettings(api_key="")
    with pytest.raises(ValueError, match="metrics_require_key needs an API key"):
        OpsSettings(metrics_require_key=True)
    assert OpsSettings(host="0.0.0.0", api_key=KEY).auth_enabled


def test_a_short_key_is_named_as_weak() -> None:
    warning = OpsSettings(api_key="x" * (MIN_KEY_LENGTH - 1)).key_warning()
    assert warning is not None and "at least 32" in warning
    assert OpsSettings(api_key="x" * MIN_KEY_LENGTH).key_warning() is None
    assert OpsSettings().key_warning() is None


# ---- rate-limit bookkeeping ---------------------------------------------------------


def test_token_buckets_refill_per_client() -> None:
    now = [0.0]
    buckets = TokenBuckets(per_minute=3, clock=lambda: now[0])
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a") == pytest.approx(20.0)  # one token every 20 s
    assert buckets.take("b") == 0.0  # another client has its own budget
    now[0] = 10.0
    assert buckets.retry_after("a") == pytest.approx(10.0)
    now[0] = 20.0
    assert buckets.take("a") == 0.0
    assert retry_after_header(0.2) == "1" and retry_after_header(19.01) == "20"


def test_token_buckets_forget_the_least_recent_client_past_the_bound() -> None:
    buckets = TokenBuckets(per_minute=1, max_clients=2, clock=lambda: 0.0)
    buckets.take("a")
    buckets.take("b")
    buckets.take("c")
    assert len(buckets) == 2
    assert buckets.take("a") == 0.0  # forgotten, so it starts full again


# ---- Host, Origin, Content-Type, CORS -------------------------------------------------


@pytest.mark.parametrize(
    ("host", "ok"),
    [("127.0.0.1:8080", True), ("localhost:8080", True), ("[::1]:8080", True),
     ("10.1.2.3", True), ("ops.internal:8080", True), ("OPS.INTERNAL", True),
     ("evil.example:8080", False), ("127.0.0.1.evil.example", False), ("", False)],
)  # fmt: skip
def test_host_allow_list(host: str, ok: bool) -> None:
    settings = OpsSettings(allowed_hosts=("ops.internal",))
    assert host_allowed(host, settings) is ok


async def test_a_rebound_host_name_is_refused_before_anything_runs(tmp_path: Path) -> None:
    async with serve(tmp_path) as ops:
        for path, method in (("/flatten", "POST"), ("/status", "GET"), ("/metrics", "GET")):
            status, body, _ = await ops.call(
                method, path, body={"side": "both"}, headers={"Host": "evil.example:8080"}
            )
            assert (status, body["error"]) == (421, "misdirected_request"), path
        assert ops.target is not None and ops.target.calls == []
        status, _, _ = await ops.call("GET", "/status", headers={"Host": "localhost"})
        assert status == 200


async def test_a_cross_site_text_plain_flatten_is_refused(tmp_path: Path) -> None:
    """The browser attack from the issue: no key, text/plain body, foreign Origin."""
    async with serve(tmp_path) as ops:
        attack = {"Content-Type": "text/plain", "Origin": "https://evil.example"}
        status, body, headers = await ops.call(
            "POST", "/flatten", raw=b'{"side": "both"}', headers=attack
        )
        assert (status, body["error"]) == (403, "forbidden_origin")
        assert "Access-Control-Allow-Origin" not in headers
        # Same page, no Origin header (e.g. curl) but still text/plain: refused as 415.
        status, body, _ = await ops.call(
            "POST", "/flatten", raw=b'{"side": "both"}', headers={"Content-Type": "text/plain"}
        )
        assert (status, body["error"]) == (415, "unsupported_media_type")
        # A bodyless stop from a foreign page: the Origin alone refuses it.
        status, body, _ = await ops.call("POST", "/stop", headers={"Origin": "null"})
        assert (status, body["error"]) == (403, "forbidden_origin")
        assert ops.target is not None and ops.target.calls == []
        # Same-origin (Swagger UI's "try it out") and JSON pass.
        same = {"Origin": ops.url}
        status, _, _ = await ops.call("POST", "/flatten", body={"side": "long"}, headers=same)
        assert status == 200
        ct = {"Content-Type": "application/json; charset=utf-8"}
        status, _, _ = await ops.call("POST", "/set-throttle", raw=b'{"throttle": 0.5}', headers=ct)
        assert status == 200


async def test_cors_only_for_configured_origins(tmp_path: Path) -> None:
    allowed = "https://ops.example"
    async with serve(tmp_path, cors_origins=(allowed,)) as ops:
        preflight = {"Origin": allowed, "Access-Control-Request-Method": "POST"}
        status, _, headers = await ops.call("OPTIONS", "/flatten", headers=preflight)
        assert status == 204 and headers["Access-Control-Allow-Origin"] == allowed
        status, _, headers = await ops.call("GET", "/status", headers={"Origin": allowed})
        assert status == 200 and headers["Access-Control-Allow-Origin"] == allowed
        status, _, headers = await ops.call(
            "OPTIONS", "/flatten", headers={**preflight, "Origin": "https://evil.example"}
        )
        assert status == 403 and "Access-Control-Allow-Origin" not in headers
        status, _, headers = await ops.call(
            "GET", "/status", headers={"Origin": "https://evil.example"}
        )
        assert "Access-Control-Allow-Origin" not in headers


# ---- keys and budgets -----------------------------------------------------------------


async def test_bearer_key_and_a_keyed_metrics_endpoint(tmp_path: Path) -> None:
    async with serve(tmp_path, api_key=KEY, metrics_require_key=True) as ops:
        status, body, _ = await ops.call("GET", "/metrics")
        assert (status, body["error"]) == (401, "unauthorized")
        bearer = {"Authorization": f"Bearer {KEY}"}
        async with ops.http.get(ops.url + "/metrics", headers=bearer) as resp:
            assert resp.status == 200 and "hedgegrid_open_orders" in await resp.text()
        status, _, _ = await ops.call("GET", "/status", headers=bearer)
        assert status == 200
        status, _, _ = await ops.call("GET", "/health")  # probes stay open
        assert status == 200


async def test_failed_auth_is_rate_limited_per_client(tmp_path: Path) -> None:
    async with serve(tmp_path, api_key=KEY, auth_failures_per_minute=3) as ops:
        statuses = [(await ops.call("POST", "/stop", key=f"guess-{i}"))[0] for i in range(3)]
        assert statuses == [401, 401, 401]
        status, body, headers = await ops.call("POST", "/stop", key="guess-4")
        assert (status, body["error"]) == (429, "too_many_requests")
        assert int(headers["Retry-After"]) >= 1
        # While blocked, even the right key waits: guessing must not continue.
        status, _, _ = await ops.call("POST", "/stop", key=KEY)
        assert status == 429
        assert ops.target is not None and ops.target.calls == []
        status, _, _ = await ops.call("GET", "/health")
        assert status == 200  # the probe lane does not care


async def test_commands_are_rate_limited_but_reads_are_not(tmp_path: Path) -> None:
    async with serve(tmp_path, posts_per_minute=5) as ops:
        statuses = [(await ops.call("POST", "/stop"))[0] for _ in range(7)]
        assert statuses[:5] == [200] * 5 and statuses[5:] == [429, 429]
        _, _, headers = await ops.call("POST", "/stop")
        assert int(headers["Retry-After"]) >= 1
        assert ops.target is not None and len(ops.target.calls) == 5
        for path in ("/status", "/metrics", "/health", "/orders"):
            assert (await ops.call("GET", path))[0] == 200, path


# ---- malformed requests: 4xx or a closed connection, never 500, always logged ----------


async def test_undecodable_header_bytes_are_a_wrong_key_not_a_500(tmp_path: Path) -> None:
    async with serve(tmp_path, api_key=KEY) as ops:
        port = ops.service.api_port
        status, body = await raw_request(
            port,
            b"GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: \xff\xfe\x80\r\n"
            b"User-Agent: bot\xc3\x28\r\nConnection: close\r\n\r\n",
        )
        assert status == 401 and orjson.loads(body)["error"] == "unauthorized"
        status, _ = await raw_request(
            port,
            b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: \xff\xff\r\n"
            b"Connection: close\r\n\r\n",
        )
        assert status == 200
    lines = access_lines(ops.log_dir)
    assert [x["status"] for x in lines] == [401, 200]
    assert lines[0]["user_agent"] == "bot\ufffd("


async def test_bad_gzip_and_bad_framing_are_400(tmp_path: Path) -> None:
    async with serve(tmp_path) as ops:
        port = ops.service.api_port
        junk = b"\x1f\x8b\x08\x00not-really-gzip-data"
        status, body = await raw_request(
            port,
            b"POST /set-throttle HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Encoding: gzip\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
            % len(junk)
            + junk,
        )
        assert status == 400 and orjson.loads(body)["error"] == "malformed_request"
        good = gzip.compress(b'{"throttle": 0.25}')
        status, _ = await raw_request(
            port,
            b"POST /set-throttle HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Encoding: gzip\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
            % len(good)
            + good,
        )
        assert status == 200
        status, body = await raw_request(
            port,
            b"POST /stop HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
            b"Content-Type: application/json\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
        )
        assert status == 400 and orjson.loads(body)["error"] == "malformed_request"
        status, body = await raw_request(
            port, b"GET /health HTTP/1.1\r\nHost: " + b"x" * 9000 + b"\r\n\r\n"
        )
        assert status == 400 and orjson.loads(body)["error"] == "malformed_request"
        many = b"".join(b"X-H%d: v\r\n" % i for i in range(200))
        status, _ = await raw_request(port, b"GET /health HTTP/1.1\r\nHost: a\r\n" + many + b"\r\n")
        assert status == 400
        assert ops.target is not None and [c[0] for c in ops.target.calls] == ["set_throttle"]
    statuses = [x["status"] for x in access_lines(ops.log_dir)]
    assert 500 not in statuses
    assert statuses.count(400) == 4


async def test_a_client_abandoning_its_body_is_logged_and_nothing_runs(tmp_path: Path) -> None:
    async with serve(tmp_path, body_timeout=0.5) as ops:
        port = ops.service.api_port
        head = (
            b"POST /flatten HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n"
        )
        # 1. it stalls mid-body: answered 408 when the body timeout passes
        status, body = await raw_request(port, head + b'{"side": ')
        assert status == 408 and orjson.loads(body)["error"] == "request_timeout"
        # 2. it hangs up mid-body
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(head + b'{"side": "bo')
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        for _ in range(100):  # the server notices the hang-up on its own schedule
            if len(access_lines(ops.log_dir)) == 2:
                break
            await asyncio.sleep(0.02)
        assert ops.target is not None and ops.target.calls == []
        assert (await ops.call("GET", "/health"))[0] == 200
    statuses = [x["status"] for x in access_lines(ops.log_dir)]
    assert statuses[0] == 408 and statuses[1] in (400, 499) and 500 not in statuses


# ---- audit before answer ---------------------------------------------------------------


async def test_the_audit_entry_is_on_disk_before_the_answer(tmp_path: Path) -> None:
    async with serve(tmp_path) as ops:
        for path, body in (("/stop", None), ("/set-throttle", {"throttle": 2})):
            status, _, headers = await ops.call("POST", path, body=body)
            assert headers["X-Audit"] == "recorded", (path, status)
            # Read the file the moment the answer arrives: the entry must already be there.
            audit = [orjson.loads(x) for x in (ops.log_dir / "audit.log").read_text().splitlines()]
            assert audit[-1]["request_id"] == headers["X-Request-ID"]
        _, _, headers = await ops.call("GET", "/status")
        assert "X-Audit" not in headers  # reads write no audit entry


async def test_an_unrecordable_audit_entry_is_said_in_the_answer_and_health(
    tmp_path: Path,
) -> None:
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    (log_dir / "audit.log").symlink_to("/dev/full")  # a full disk, for audit.log only
    async with serve(tmp_path) as ops:
        status, body, headers = await ops.call("POST", "/stop")
        assert status == 200 and body["status"] == "stopped"  # the action itself ran
        assert headers["X-Audit"] == "failed" and body["audit_recorded"] is False
        status, health, _ = await ops.call("GET", "/health")
        assert status == 503 and health["status"] == "degraded"
        assert "audit.log is failing: ENOSPC" in health["reason"]
        async with ops.http.get(ops.url + "/metrics") as resp:
            text = await resp.text()
        assert (
            'hedgegrid_log_sink_failing{instrument="BTCUSDT-PERP.BINANCE",sink="audit.log"} 1'
            in text
        )
    trading = [orjson.loads(x) for x in (ops.log_dir / "trading.log").read_text().splitlines()]
    assert any(x.get("event") == "control_action" and x["action"] == "stop" for x in trading)


def test_post_budget_flag_sets_the_per_client_budget() -> None:
    from hedgegrid_ops.cli import _ops_settings, build_parser

    iid = "BTCUSDT-PERP.BINANCE"
    default = _ops_settings(build_parser().parse_args(["run", "--enable-ops"]), iid)
    raised = _ops_settings(
        build_parser().parse_args(["run", "--enable-ops", "--post-budget", "7"]), iid
    )
    assert (default.posts_per_minute, raised.posts_per_minute) == (120, 7)


async def test_a_command_flood_never_starves_reads_or_metrics(tmp_path: Path) -> None:
    async with serve(tmp_path, posts_per_minute=100_000) as ops:
        connector = aiohttp.TCPConnector(limit=100)  # under the 256-connection cap
        async with aiohttp.ClientSession(connector=connector) as flood:

            async def post(i: int) -> int:
                async with flood.post(
                    ops.url + "/set-throttle", json={"throttle": (i % 10) / 10}
                ) as resp:
                    await resp.read()
                    return resp.status

            async def reads() -> list[int]:
                statuses = []
                for path in ("/metrics", "/health", "/status") * 10:
                    async with ops.http.get(ops.url + path) as resp:
                        await resp.read()
                        statuses.append(resp.status)
                return statuses

            results = await asyncio.gather(reads(), *(post(i) for i in range(300)))
        read_statuses, post_statuses = results[0], results[1:]
        assert read_statuses == [200] * 30
        assert set(post_statuses) <= {200, 429}, post_statuses  # 429: too many waiting
        assert ops.target is not None
        assert len(ops.target.calls) == post_statuses.count(200)  # a 429 ran nothing

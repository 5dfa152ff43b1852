"""GET /events on a real socket: snapshot on connect, order, coalescing, auth, caps, drops.

The service is the real ``OpsService``; snapshots go in through the real
``SnapshotStore`` and events through the hub's ``publish`` (what the message-bus tap
and the audit trail call), and clients are aiohttp WebSockets or, for a client that
stalls, a raw socket that completes the handshake and then never reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import orjson
import pytest

from hedgegrid_ops.ops.events import (
    CLOSE_BAD_MESSAGE,
    CLOSE_SLOW_CONSUMER,
    CLOSE_TRY_AGAIN_LATER,
    CLOSE_UNAUTHORIZED,
    EventHub,
    EventType,
    StreamSettings,
)
from hedgegrid_ops.ops.guard import GuardedServer
from hedgegrid_ops.snapshot import KillSwitchView, SideState, TradingState
from tests.support.inprocess import API_KEY, Running, StateTarget, make_snapshot, serve_ops
from tests.support.polling import until
from tests.support.websocket import stalled_events_client

FAST = StreamSettings(snapshot_interval=0.05, heartbeat_interval=0.2, auth_timeout=0.5)


def ws_url(ops: Running) -> str:
    return ops.url.replace("http://", "ws://") + "/events"


async def receive_json(ws: aiohttp.ClientWebSocketResponse, timeout: float = 5.0) -> dict:
    msg = await ws.receive(timeout=timeout)
    assert msg.type is aiohttp.WSMsgType.TEXT, (msg.type, msg.data, msg.extra)
    return orjson.loads(msg.data)


async def next_event(ws: aiohttp.ClientWebSocketResponse, timeout: float = 5.0) -> dict:
    """The next message that is neither a snapshot nor a heartbeat."""
    while True:
        msg = await receive_json(ws, timeout)
        if msg["type"] not in ("snapshot", "heartbeat"):
            return msg


async def next_snapshot(ws: aiohttp.ClientWebSocketResponse, timeout: float = 5.0) -> dict:
    return await until_type(ws, "snapshot", timeout)


async def until_type(ws: aiohttp.ClientWebSocketResponse, kind: str, timeout: float = 5.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        msg = await receive_json(ws, max(0.01, deadline - time.monotonic()))
        if msg["type"] == kind:
            return msg


async def closed_with(ws: aiohttp.ClientWebSocketResponse) -> tuple[int | None, str]:
    """Read until the server's close frame; (code, reason). No data frame may come first."""
    msg = await ws.receive(timeout=5)
    assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), (msg.type, msg.data)
    return ws.close_code, msg.extra or ""


async def test_snapshot_on_connect_equals_the_get_routes(tmp_path: Path) -> None:
    async with serve_ops(tmp_path, api_key=API_KEY, snapshot=make_snapshot()) as ops:
        async with ops.http.ws_connect(ws_url(ops), headers={"X-API-Key": API_KEY}) as ws:
            first = await receive_json(ws)
        assert first["type"] == "snapshot"
        for route in ("status", "ladders", "orders"):
            status, body, _ = await ops.call("GET", f"/{route}", key=API_KEY)
            assert status == 200
            assert first["data"][route] == body


async def test_plain_get_is_told_to_upgrade(tmp_path: Path) -> None:
    async with serve_ops(tmp_path, api_key=API_KEY, snapshot=make_snapshot()) as ops:
        status, body, _ = await ops.call("GET", "/events", key=API_KEY)
    assert status == 426
    assert body["error"] == "upgrade_required"


async def test_events_keep_their_order_and_snapshots_follow_them(tmp_path: Path) -> None:
    async with serve_ops(tmp_path, api_key=API_KEY, snapshot=make_snapshot(), stream=FAST) as ops:
        hub = ops.service.events
        async with ops.http.ws_connect(ws_url(ops), headers={"X-API-Key": API_KEY}) as ws:
            assert (await receive_json(ws))["type"] == "snapshot"
            for i in range(50):
                hub.publish(EventType.FILL, {"n": i})
                if i % 10 == 9:
                    ops.store.publish(make_snapshot(realized_pnl=float(i)))
                    await asyncio.sleep(0)  # spread over several loop iterations
            got: list[dict] = []
            while (
                not got
                or got[-1]["type"] != "snapshot"
                or len([m for m in got if m["type"] == "fill"]) < 50
            ):
                got.append(await receive_json(ws))
        seqs = [m["seq"] for m in got]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        fills = [m["data"]["n"] for m in got if m["type"] == "fill"]
        assert fills == list(range(50))
        # every snapshot message comes after the fills published before it
        last_snapshot = [m for m in got if m["type"] == "snapshot"][-1]
        assert last_snapshot["data"]["status"]["pnl"]["realized"] == 49.0


async def test_deferred_events_are_built_after_the_publisher_returns(tmp_path: Path) -> None:
    """The message-bus tap publishes order events as they are; their messages are built at
    flush time (not on the strategy's call path), in order with the other events, and an
    event the renderer declines is left out."""
    built: list[int] = []

    def render(n: int) -> tuple[str, dict] | None:
        built.append(n)
        return None if n == 2 else (EventType.ORDER, {"n": n})

    async with (
        serve_ops(tmp_path, api_key=API_KEY, snapshot=make_snapshot(), stream=FAST) as ops,
        ops.http.ws_connect(ws_url(ops), headers={"X-API-Key": API_KEY}) as ws,
    ):
        await receive_json(ws)
        hub = ops.service.events
        hub.publish(EventType.FILL, {"n": 0})
        hub.publish_deferred(render, 1)
        hub.publish_deferred(render, 2)
        hub.publish(EventType.FILL, {"n": 3})
        assert built == []  # nothing rendered while the publisher is still running
        got = [await next_event(ws) for _ in range(3)]
    assert [(m["type"], m["data"]["n"]) for m in got] == [("fill", 0), ("order", 1), ("fill", 3)]
    assert built == [1, 2]


async def test_snapshots_are_coalesced_and_the_latest_is_delivered(tmp_path: Path) -> None:
    interval = 0.1
    settings = StreamSettings(snapshot_interval=interval, heartbeat_interval=60.0)
    async with serve_ops(
        tmp_path, api_key=API_KEY, snapshot=make_snapshot(), stream=settings
    ) as ops:
        async with ops.http.ws_connect(ws_url(ops), headers={"X-API-Key": API_KEY}) as ws:
            await receive_json(ws)  # the snapshot on connect
            started = asyncio.get_running_loop().time()
            published = 0
            for _ in range(40):  # 40 loop iterations of 20 snapshots each, like busy bars
                for _ in range(20):
                    published += 1
                    ops.store.publish(make_snapshot(realized_pnl=float(published)))
                await asyncio.sleep(0.005)
            elapsed = asyncio.get_running_loop().time() - started
            received = []
            while True:
                msg = await next_snapshot(ws)
                received.append(msg)
                if msg["data"]["status"]["pnl"]["realized"] == float(published):
                    break
        # at most one per interval (plus the one the last publish scheduled)
        assert len(received) <= elapsed / interval + 2, (len(received), elapsed)
        assert ops.service.events.sent_snapshots == len(received)
        pnls = [m["data"]["status"]["pnl"]["realized"] for m in received]
        assert pnls == sorted(pnls)


async def test_state_throttle_and_flatten_changes_are_events(tmp_path: Path) -> None:
    base = make_snapshot()
    async with (
        serve_ops(tmp_path, api_key=API_KEY, snapshot=base, stream=FAST) as ops,
        ops.http.ws_connect(ws_url(ops), headers={"X-API-Key": API_KEY}) as ws,
    ):
        await receive_json(ws)
        flat = SideState(quantity=0.0, entry_price=0.0, inventory_usdt=0.0, unrealized_pnl=0.0)
        ops.store.publish(make_snapshot(throttle=0.25))
        ops.store.publish(
            make_snapshot(
                throttle=0.25, trading_state=TradingState.FLATTENING, state_reason="flatten"
            )
        )
        ops.store.publish(
            make_snapshot(
                throttle=0.25,
                trading_state=TradingState.FLATTENING,
                state_reason="flatten",
                long=flat,
            )
        )
        ops.store.publish(
            make_snapshot(
                throttle=0.25,
                trading_state=TradingState.PAUSED,
                state_reason="flat",
                long=flat,
                short=flat,
            )
        )
        events: list[dict] = []
        while len(events) < 6:
            events.append(await next_event(ws))
    kinds = [(m["type"], m["data"].get("phase") or m["data"].get("state")) for m in events]
    assert kinds == [
        ("throttle", None),
        ("trading_state", "flattening"),
        ("flatten", "started"),
        ("flatten", "progress"),
        ("trading_state", "paused"),
        ("flatten", "done"),
    ]
    assert events[0]["data"] == {"previous": 0.75, "throttle": 0.25}
    assert events[3]["data"]["long_qty"] == 0.0 and events[3]["data"]["short_qty"] == 0.03
    assert events[4]["data"] == {"previous": "flattening", "state": "paused", "reason": "flat"}
    assert events[5]["data"]["short_qty"] == 0.0


async def test_a_kill_switch_trip_is_an_event_once(tmp_path: Path) -> None:
    base = make_snapshot()
    tripped = KillSwitchView(
        tripped=True,
        breaker="max_drawdown",
        reason="max_drawdown: measured 0.104 > limit 0.1",
        tripped_at=time.time(),
        trips={"max_drawdown": 1},
    )
    halted = {"trading_state": TradingState.HALTED, "state_reason": tripped.reason}
    async with (
        serve_ops(tmp_path, api_key=API_KEY, snapshot=base, stream=FAST) as ops,
        ops.http.ws_connect(ws_url(ops), headers={"X-API-Key": API_KEY}) as ws,
    ):
        await receive_json(ws)
        ops.store.publish(make_snapshot(kill_switch=tripped, **halted))
        ops.store.publish(make_snapshot(kill_switch=tripped, **halted))  # the same trip
        ops.store.publish(make_snapshot(throttle=0.5, kill_switch=tripped, **halted))
        events: list[dict] = []
        while not events or events[-1]["type"] != "throttle":
            events.append(await next_event(ws))
    assert [m["type"] for m in events] == ["trading_state", "kill_switch", "throttle"]
    assert events[1]["data"] == {
        "breaker": "max_drawdown",
        "reason": "max_drawdown: measured 0.104 > limit 0.1",
        "tripped_at": tripped.tripped_at,
        "trips": {"max_drawdown": 1},
    }


async def test_control_actions_reach_the_stream_as_audit_entries(tmp_path: Path) -> None:
    async with (
        serve_ops(
            tmp_path, api_key=API_KEY, snapshot=make_snapshot(), target=StateTarget(), stream=FAST
        ) as ops,
        ops.http.ws_connect(ws_url(ops), headers={"X-API-Key": API_KEY}) as ws,
    ):
        await receive_json(ws)
        status, _, _ = await ops.call("POST", "/stop", key=API_KEY, body={})
        assert status == 200
        audit = await until_type(ws, "audit")
        status, _, _ = await ops.call("POST", "/stop", key="wrong", body={})
        assert status == 401
        refused = await until_type(ws, "audit")
    assert audit["data"]["action"] == "stop" and audit["data"]["outcome"] == "ok"
    assert audit["data"]["key_used"] is True
    assert refused["data"]["outcome"] == "unauthorized"
    assert API_KEY not in orjson.dumps(audit).decode()


# ---- authentication ---------------------------------------------------------------------


async def test_browser_style_first_message_authenticates(tmp_path: Path) -> None:
    async with (
        serve_ops(tmp_path, api_key=API_KEY, snapshot=make_snapshot(), stream=FAST) as ops,
        ops.http.ws_connect(ws_url(ops)) as ws,
    ):
        await ws.send_str(orjson.dumps({"type": "auth", "key": API_KEY}).decode())
        assert (await receive_json(ws))["type"] == "snapshot"


@pytest.mark.parametrize(
    ("how", "code", "reason"),
    [
        ("wrong header", CLOSE_UNAUTHORIZED, "wrong X-API-Key"),
        ("wrong first message", CLOSE_UNAUTHORIZED, "wrong API key"),
        ("silence", CLOSE_UNAUTHORIZED, "no auth message within 0.5s"),
        ("not json", CLOSE_BAD_MESSAGE, "the first message is not JSON"),
        ("not an auth message", CLOSE_BAD_MESSAGE, "the first message must be"),
    ],
)
async def test_no_valid_key_closes_before_any_data(
    tmp_path: Path, how: str, code: int, reason: str
) -> None:
    async with serve_ops(tmp_path, api_key=API_KEY, snapshot=make_snapshot(), stream=FAST) as ops:
        headers = {"X-API-Key": "nope"} if how == "wrong header" else {}
        async with ops.http.ws_connect(ws_url(ops), headers=headers) as ws:
            if how == "wrong first message":
                await ws.send_str(orjson.dumps({"type": "auth", "key": "nope"}).decode())
            elif how == "not json":
                await ws.send_str("hello")
            elif how == "not an auth message":
                await ws.send_str(orjson.dumps({"key": API_KEY}).decode())
            got_code, got_reason = await closed_with(ws)
        assert ops.service.events.clients == 0
    assert got_code == code
    assert got_reason.startswith(reason)


async def test_without_a_configured_key_the_stream_is_open(tmp_path: Path) -> None:
    async with (
        serve_ops(tmp_path, snapshot=make_snapshot(), stream=FAST) as ops,
        ops.http.ws_connect(ws_url(ops)) as ws,
    ):
        assert (await receive_json(ws))["type"] == "snapshot"


# ---- capacity and slow clients ---------------------------------------------------------


def _metric(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if line.startswith(name) and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} {labels} not in /metrics")


async def test_clients_are_counted_and_capped(tmp_path: Path) -> None:
    settings = StreamSettings(max_clients=2, heartbeat_interval=60.0)
    async with serve_ops(
        tmp_path, api_key=API_KEY, snapshot=make_snapshot(), stream=settings
    ) as ops:
        hdr = {"X-API-Key": API_KEY}
        async with (
            ops.http.ws_connect(ws_url(ops), headers=hdr) as a,
            ops.http.ws_connect(ws_url(ops), headers=hdr) as b,
        ):
            await receive_json(a)
            await receive_json(b)
            async with ops.http.get(ops.url + "/metrics") as resp:
                assert _metric(await resp.text(), "hedgegrid_event_stream_clients") == 2
            async with ops.http.ws_connect(ws_url(ops), headers=hdr) as c:
                code, reason = await closed_with(c)
            assert code == CLOSE_TRY_AGAIN_LATER
            assert "the limit is 2" in reason
        await asyncio.sleep(0.1)
        async with ops.http.get(ops.url + "/metrics") as resp:
            assert _metric(await resp.text(), "hedgegrid_event_stream_clients") == 0


async def test_fifty_clients_receive_the_same_messages(tmp_path: Path) -> None:
    """The fan-out writes the same pre-framed batch to every client: 50 clients (the bench's
    count) each get every event and snapshot, in order, byte for byte the same."""
    settings = StreamSettings(snapshot_interval=0.05, heartbeat_interval=60.0)
    async with serve_ops(
        tmp_path, api_key=API_KEY, snapshot=make_snapshot(), stream=settings
    ) as ops:
        hub = ops.service.events
        hdr = {"X-API-Key": API_KEY}
        clients = [await ops.http.ws_connect(ws_url(ops), headers=hdr) for _ in range(50)]
        try:
            for ws in clients:
                await receive_json(ws)  # the snapshot on connect
            assert hub.clients == 50
            for i in range(30):
                hub.publish(EventType.FILL, {"n": i})
                if i % 10 == 9:
                    ops.store.publish(make_snapshot(realized_pnl=float(i)))
                    await asyncio.sleep(0.01)

            async def stream_of(ws: aiohttp.ClientWebSocketResponse) -> list[str]:
                got: list[str] = []
                while True:
                    msg = await ws.receive(timeout=5)
                    assert msg.type is aiohttp.WSMsgType.TEXT
                    data = orjson.loads(msg.data)
                    if data["type"] == "heartbeat" and not got:
                        continue  # the priming heartbeat (each client's own)
                    got.append(msg.data)
                    if (
                        data["type"] == "snapshot"
                        and data["data"]["status"]["pnl"]["realized"] == 29
                    ):
                        return got

            streams = await asyncio.gather(*(stream_of(ws) for ws in clients))
        finally:
            await asyncio.gather(*(ws.close() for ws in clients))
    assert all(s == streams[0] for s in streams)
    fills = [orjson.loads(m)["data"]["n"] for m in streams[0] if '"type":"fill"' in m]
    assert fills == list(range(30))


@contextlib.asynccontextmanager
async def serving_a_stalled_client(
    tmp_path: Path, settings: StreamSettings
) -> AsyncIterator[tuple[Running, socket.socket]]:
    """The ops server with one /events client that upgraded and then never reads again."""
    async with serve_ops(
        tmp_path, api_key=API_KEY, snapshot=make_snapshot(), stream=settings
    ) as ops:
        stalled = await stalled_events_client(ops.service.api_port, API_KEY)
        try:
            yield ops, stalled
        finally:
            stalled.close()


async def publish_until_a_client_is_dropped(hub: EventHub, event: EventType) -> int:
    """Publish 4 KB messages, 50 per flush, until the hub has one client fewer.

    Returns how many were published (at most 20,000, when nobody was dropped)."""
    clients = hub.clients
    blob = "x" * 4000
    sent = 0
    while hub.clients == clients and sent < 20_000:
        for _ in range(50):
            hub.publish(event, {"n": sent, "pad": blob})
            sent += 1
        await asyncio.sleep(0.03)  # one flush: one write of the batch
    return sent


async def test_a_stalled_client_is_dropped_and_the_others_get_everything(tmp_path: Path) -> None:
    settings = StreamSettings(buffer=8, snapshot_interval=0.05, heartbeat_interval=60.0)
    async with serving_a_stalled_client(tmp_path, settings) as (ops, _):
        hub = ops.service.events
        async with ops.http.ws_connect(
            ws_url(ops), headers={"X-API-Key": API_KEY}, max_msg_size=0
        ) as healthy:
            await receive_json(healthy)
            assert hub.clients == 2
            blob = "x" * 4000
            sent = 0
            received: list[int] = []
            # Bursts the healthy client keeps up with; the stalled one cannot.
            while hub.clients == 2 and sent < 20_000:
                for _ in range(4):
                    hub.publish(EventType.AUDIT, {"n": sent, "pad": blob})
                    sent += 1
                await asyncio.sleep(0)
                while len(received) < sent - 4:
                    received.append((await next_event(healthy))["data"]["n"])
            assert hub.clients == 1, "the stalled client was never dropped"
            while len(received) < sent:
                received.append((await next_event(healthy))["data"]["n"])
            assert received == list(range(sent))
            async with ops.http.get(ops.url + "/metrics") as resp:
                text = await resp.text()
            assert _metric(text, "hedgegrid_event_stream_dropped_total") == 1
            assert _metric(text, "hedgegrid_event_stream_clients") == 1
    lines = [
        orjson.loads(line)
        for line in (ops.log_dir / "trading.log").read_text().splitlines()
        if "events_client_dropped" in line
    ]
    assert len(lines) == 1 and lines[0]["reason"].startswith("too slow: 8 messages")


async def test_a_stalled_client_is_cut_off_once_the_grace_period_is_over(tmp_path: Path) -> None:
    """A dropped client that does not read even the close frame does not keep what was
    buffered for it: once it makes no progress the server discards it and closes the socket,
    so the client, reading at last, gets less than the server wrote for it and no close
    frame (a peer with its window shut would otherwise hold the buffer forever)."""
    settings = StreamSettings(buffer=8, heartbeat_interval=60.0)
    async with serving_a_stalled_client(tmp_path, settings) as (ops, stalled):
        hub = ops.service.events
        (sub,) = hub._subs.values()
        await publish_until_a_client_is_dropped(hub, EventType.AUDIT)
        assert hub.clients == 0, "the stalled client was never dropped"
        # it still reads nothing; the server gives it up once it sees no progress
        (api,) = [
            r.server
            for r in ops.service._runners
            if r.server is not None and r.addresses[-1][1] == ops.service.api_port
        ]
        assert isinstance(api, GuardedServer)
        assert await until(lambda: api.open_connections == 0, 30), "never cut off"
        loop = asyncio.get_running_loop()
        received = 0
        with contextlib.suppress(ConnectionResetError):
            while data := await asyncio.wait_for(loop.sock_recv(stalled, 65536), 10):
                received += len(data)
    # everything the hub wrote plus the close frame had it been kept; less when discarded
    assert 0 < received < sub._written


async def test_a_dropped_client_reads_the_close_code_when_it_catches_up(tmp_path: Path) -> None:
    settings = StreamSettings(buffer=4, heartbeat_interval=60.0)
    async with serve_ops(
        tmp_path, api_key=API_KEY, snapshot=make_snapshot(), stream=settings
    ) as ops:
        hub = ops.service.events
        async with ops.http.ws_connect(
            ws_url(ops), headers={"X-API-Key": API_KEY}, max_msg_size=0
        ) as ws:
            await receive_json(ws)
            # The client stops reading (aiohttp stops reading the socket once 64 KiB wait
            # unread); the server keeps publishing until it gives the client up.
            sent = await publish_until_a_client_is_dropped(hub, EventType.FILL)
            assert hub.clients == 0, "the client that stopped reading was never dropped"
            for n in range(sent, sent + 10):  # nothing published after the drop reaches it
                hub.publish(EventType.FILL, {"n": n})
            await asyncio.sleep(0.05)
            got: list[int] = []
            while True:
                msg = await ws.receive(timeout=5)
                if msg.type is not aiohttp.WSMsgType.TEXT:
                    break
                data = orjson.loads(msg.data)
                if data["type"] == "fill":
                    got.append(data["data"]["n"])
            assert ws.close_code == CLOSE_SLOW_CONSUMER
            assert (msg.extra or "").startswith("too slow: 4 messages")
        # what it got is an unbroken prefix of what was published before it was given up,
        # then the close frame
        assert got == list(range(len(got)))
        assert 0 < len(got) <= sent


async def test_messages_of_every_frame_length_arrive_intact(tmp_path: Path) -> None:
    """The hub frames each message itself (one frame for all clients): messages around
    the 126-byte and 64 KiB boundaries of the frame's length encoding, in one batch and
    to two clients, arrive whole and in order."""
    pads = [*range(0, 200), *range(65_380, 65_560)]  # the JSON around it is ~70 bytes
    settings = StreamSettings(buffer=len(pads) + 10, heartbeat_interval=60.0)
    async with serve_ops(
        tmp_path, api_key=API_KEY, snapshot=make_snapshot(), stream=settings
    ) as ops:
        hdr = {"X-API-Key": API_KEY}
        async with (
            ops.http.ws_connect(ws_url(ops), headers=hdr, max_msg_size=0) as a,
            ops.http.ws_connect(ws_url(ops), headers=hdr, max_msg_size=0) as b,
        ):
            await receive_json(a)
            await receive_json(b)
            for i, size in enumerate(pads):
                ops.service.events.publish(EventType.FILL, {"n": i, "pad": "é" * (size // 2)})
            for ws in (a, b):
                sizes = []
                for i, size in enumerate(pads):
                    data = await next_event(ws)
                    assert data["data"]["n"] == i
                    assert data["data"]["pad"] == "é" * (size // 2)
                    sizes.append(len(orjson.dumps(data)))
                assert min(sizes) < 126 <= max(sizes) and any(s > 65_535 for s in sizes)
                assert any(126 <= s <= 65_535 for s in sizes)


async def test_an_upgrade_from_another_origin_is_refused(tmp_path: Path) -> None:
    """Cross-site WebSocket hijacking: a foreign page must not read the stream."""
    async with serve_ops(tmp_path, snapshot=make_snapshot(), stream=FAST) as ops:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await ops.http.ws_connect(ws_url(ops), origin="http://evil.example")
        assert refused.value.status == 403
        assert ops.service.events.clients == 0
        host = ops.url.removeprefix("http://")
        async with ops.http.ws_connect(ws_url(ops), origin=f"http://{host}") as ws:
            assert (await receive_json(ws))["type"] == "snapshot"

"""/events on the real node: order, completeness, flatten progress and a stalled client.

The node, the strategy and the ops server run in one child interpreter (as
``python -m hedgegrid_ops run`` runs them, see tests/child.py) on the busy market
(speed 60). Three WebSocket clients read everything; a fourth completes the handshake
and never reads again, with a tiny receive buffer. The scenario then flattens both legs
over HTTP. The child records what each client saw and the parent asserts:

* the stalled client is dropped (with its reason in the log and the metric), the
  strategy keeps processing bars, and the three healthy clients are never dropped and
  receive exactly the same messages;
* per client, ``seq`` increases strictly; an order's ``accepted`` comes before its fills
  and its cancel; a snapshot already counts every fill sent before it;
* the flatten is visible in order: the audit entry, ``running -> flattening``, flatten
  ``started``, ``done``, ``flattening -> paused``, and a snapshot with flat legs.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from tests.child import drive_in_child, emit_result, paper_options, run_child
from tests.support.polling import until
from tests.support.websocket import stalled_events_client

SPEED = 60.0
API_KEY = "events-live-key-0b7c"
BUFFER = 256  # the default bound: with the bounded send buffer a stall shows in seconds


def _summary(msg: dict[str, Any]) -> dict[str, Any]:
    """What the parent needs of one message (whole snapshots would be megabytes)."""
    kind, data = msg["type"], msg["data"]
    out: dict[str, Any] = {"type": kind, "seq": msg["seq"]}
    if kind == "snapshot":
        status = data["status"]
        c = status["counters"]
        out["fills"] = c["fills_buy_maker"] + c["fills_buy_taker"]
        out["fills"] += c["fills_sell_maker"] + c["fills_sell_taker"]
        out["state"] = status["trading_state"]
        out["legs"] = [
            status["positions"]["long"]["quantity"],
            status["positions"]["short"]["quantity"],
        ]
    elif kind in ("fill", "order"):
        out["coid"] = data["client_order_id"]
        out["event"] = data.get("event", "fill")
    elif kind == "trading_state":
        out["event"] = f"{data['previous']}->{data['state']}"
    elif kind == "flatten":
        out["event"] = data["phase"]
    elif kind == "audit":
        out["event"] = f"{data['action']}:{data['outcome']}"
    return out


async def _scenario(log_dir: Path, built: list[Any]) -> dict[str, Any]:
    import aiohttp

    from hedgegrid_ops.node import build_service, run_service

    options = paper_options(log_dir, SPEED)
    options = dataclasses.replace(options, ops=dataclasses.replace(options.ops, api_key=API_KEY))
    loop = asyncio.get_running_loop()
    service = build_service(options, loop)
    built.append(service)
    ops = service.ops
    assert ops is not None
    runner = loop.create_task(run_service(service, None))
    facts: dict[str, Any] = {}

    def listening() -> bool:
        with contextlib.suppress(RuntimeError):
            return ops.api_port > 0
        return False

    def bars() -> int:
        snap = service.store.latest
        return 0 if snap is None else snap.counters.bars_processed

    try:
        assert await until(listening, 30), "the ops server did not start"
        assert await until(lambda: bars() > 20, 30), "no bars"
        ws_url = ops.api_url.replace("http://", "ws://") + "/events"
        received: list[list[dict[str, Any]]] = [[], [], []]
        closed: list[Any] = [None, None, None]
        async with aiohttp.ClientSession() as http:

            async def reader(i: int) -> None:
                async with http.ws_connect(
                    ws_url, headers={"X-API-Key": API_KEY}, max_msg_size=0
                ) as ws:
                    async for msg in ws:
                        if msg.type is aiohttp.WSMsgType.TEXT:
                            received[i].append(_summary(orjson.loads(msg.data)))
                    closed[i] = ws.close_code

            readers = [loop.create_task(reader(i)) for i in range(3)]
            assert await until(lambda: ops.events.clients == 3, 10)
            stalled = await stalled_events_client(ops.api_port, API_KEY)
            assert await until(lambda: ops.events.clients == 4, 10)
            bars_at_stall = bars()
            stalled_at = time.monotonic()
            facts["stall_dropped"] = await until(lambda: ops.events.clients == 3, 60)
            facts["stall_seconds"] = round(time.monotonic() - stalled_at, 2)
            facts["waiting"] = [sub.waiting for sub in ops.events._subs.values()]
            facts["bytes_sent"] = {
                k: v for k, v in ops.events.__dict__.items() if k == "sent_snapshots"
            }
            facts["bars_while_stalled"] = bars() - bars_at_stall
            await asyncio.sleep(1.0)

            # flatten both legs once there is something to flatten
            await until(
                lambda: (
                    service.store.latest is not None
                    and (
                        service.store.latest.long.quantity > 0
                        or service.store.latest.short.quantity > 0
                    )
                ),
                30,
            )
            async with http.post(
                ops.api_url + "/flatten",
                json={"side": "both"},
                headers={"X-API-Key": API_KEY},
            ) as resp:
                facts["flatten_status"] = resp.status
            facts["paused"] = await until(
                lambda: (
                    service.store.latest is not None
                    and service.store.latest.trading_state.value == "paused"
                ),
                60,
            )
            await asyncio.sleep(1.0)  # the last snapshot reaches the clients
            async with http.get(ops.api_url + "/metrics") as resp:
                metrics = await resp.text()
            facts["dropped_metric"] = [
                line
                for line in metrics.splitlines()
                if line.startswith("hedgegrid_event_stream_dropped_total")
            ]
            facts["clients_metric"] = [
                line
                for line in metrics.splitlines()
                if line.startswith("hedgegrid_event_stream_clients")
            ]
            stalled.close()
            facts["clients_before_stop"] = ops.events.clients
            facts["closed"] = list(closed)  # None: the server never closed a healthy client
            for task in readers:
                task.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
        facts["received"] = received
    finally:
        signal.raise_signal(signal.SIGTERM)
        await asyncio.wait_for(runner, timeout=30)
    return facts


def drive_node(log_dir: Path) -> dict[str, Any]:
    """The scenario, then the drop lines from the trading log (complete once logging shut down)."""
    facts: dict[str, Any] = drive_in_child(_scenario, log_dir)
    facts["drop_lines"] = [
        line
        for line in (log_dir / "trading.log").read_text().splitlines()
        if "events_client_dropped" in line
    ]
    return facts


# ---- the test -------------------------------------------------------------------------------


def test_the_stream_on_a_busy_node() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        facts = run_child("tests.integration.test_events_live", tmp, timeout=240)

    # the stalled client is dropped; the strategy and the other clients do not notice
    assert facts["stall_dropped"], f"the stalled client was never dropped: {facts}"[:3000]
    assert facts["bars_while_stalled"] > 0
    assert (
        len(facts["drop_lines"]) == 1 and f"too slow: {BUFFER} messages" in facts["drop_lines"][0]
    )
    assert [float(line.rsplit(" ", 1)[1]) for line in facts["dropped_metric"]] == [1.0]
    assert facts["closed"] == [None, None, None]
    assert facts["clients_before_stop"] == 3
    clients = facts["received"]
    assert all(len(c) > 50 for c in clients), [len(c) for c in clients]
    start = max(c[1]["seq"] for c in clients)  # past every client's priming messages
    shared = [[m["seq"] for m in c if m["seq"] > start] for c in clients]
    assert shared[0] == shared[1] == shared[2], "the healthy clients saw different messages"

    for msgs in clients:
        seqs = [m["seq"] for m in msgs]
        assert seqs == sorted(set(seqs)), "seq is not strictly increasing"
        assert msgs[0]["type"] == "snapshot"
        kinds = {m["type"] for m in msgs}
        assert {
            "snapshot",
            "heartbeat",
            "fill",
            "order",
            "audit",
            "trading_state",
            "flatten",
        } <= kinds
        # an order's accepted comes before its fills and its cancel
        seen: dict[str, list[str]] = {}
        for m in msgs:
            if m["type"] in ("fill", "order"):
                seen.setdefault(m["coid"], []).append(m["event"])
        for coid, events in seen.items():
            if "accepted" in events:
                first = events.index("accepted")
                assert all(e not in ("fill", "cancelled") for e in events[:first]), (coid, events)
        # a snapshot counts every fill sent before it
        base = msgs[0]["fills"]
        fills_sent = 0
        for m in msgs[1:]:
            if m["type"] == "fill":
                fills_sent += 1
            elif m["type"] == "snapshot":
                assert m["fills"] - base >= fills_sent, (m, fills_sent)
        # the flatten, in order
        story = [
            (m["type"], m.get("event"))
            for m in msgs
            if m["type"] in ("audit", "trading_state", "flatten")
        ]
        flatten_at = story.index(("audit", "flatten:ok"))
        tail = [s for s in story[flatten_at:] if s[0] != "audit"]
        assert tail[0] == ("trading_state", "running->flattening"), tail
        assert tail[1] == ("flatten", "started"), tail
        done = tail.index(("flatten", "done"))
        assert ("trading_state", "flattening->paused") in tail[done - 1 : done + 1], tail
        last_snapshot = [m for m in msgs if m["type"] == "snapshot"][-1]
        assert last_snapshot["state"] == "paused" and last_snapshot["legs"] == [0.0, 0.0]
    assert facts["flatten_status"] == 200 and facts["paused"]


if __name__ == "__main__":
    emit_result(drive_node(Path(sys.argv[1])))

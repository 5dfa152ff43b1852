"""The ``watch`` view: drawing is a pure function of the view; the loop reads the real stream."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import orjson

from hedgegrid_ops.client_stream import HedgeGridStreamClosed, stream_events
from hedgegrid_ops.ops.events import EventType, StreamSettings, encode
from hedgegrid_ops.ops.stream import snapshot_data
from hedgegrid_ops.watch import CLEAR, WatchView, render, watch
from tests.support.inprocess import API_KEY, make_snapshot, serve_ops


def test_render_shows_state_positions_pnl_fills_and_events() -> None:
    snap = make_snapshot()
    view = WatchView(connection="live")
    wire = orjson.loads(encode(snapshot_data(snap)))  # as the stream delivers it
    assert view.apply({"type": "snapshot", "time": 1.0, "data": wire})
    assert not view.apply({"type": "heartbeat", "data": {"health": {"status": "healthy"}}})
    fill = {
        "side": "BUY",
        "position_side": "LONG",
        "role": "grid",
        "qty": 0.002,
        "price": 60123.4,
        "liquidity": "maker",
        "ts_event": 0.0,
    }
    assert not view.apply({"type": "fill", "time": 1.0, "data": fill})
    assert not view.apply(
        {
            "type": "trading_state",
            "time": 0.0,
            "data": {"previous": "running", "state": "paused", "reason": "stop by me"},
        }
    )
    assert not view.apply({"type": "order", "time": 0.0, "data": {"event": "accepted"}})
    text = render(view)
    assert "[live]" in text and "BTCUSDT-PERP.BINANCE" in text
    assert "state   running (start by operator)" in text
    assert "health  healthy" in text
    assert "LONG          0.05     29,950.00      3.1250      1,500.62" in text
    assert "SHORT         0.03     30,100.00     -1.5000        900.38" in text
    assert "realized 12.7500  unrealized 1.6250  total 14.3750 USDT" in text
    assert "BUY  LONG  grid           0.002 @ 60,123.40  maker" in text
    assert "trading running -> paused: stop by me" in text
    assert "accepted" not in text  # routine order events are not listed


def test_render_before_the_first_snapshot() -> None:
    assert "waiting for the first snapshot" in render(WatchView())


async def test_watch_draws_count_frames_from_a_real_stream(tmp_path: Path) -> None:
    settings = StreamSettings(snapshot_interval=0.01, heartbeat_interval=60.0)
    async with serve_ops(
        tmp_path, api_key=API_KEY, snapshot=make_snapshot(), stream=settings
    ) as ops:
        out, err = io.StringIO(), io.StringIO()
        task = asyncio.ensure_future(watch(ops.url, API_KEY, out, err, count=3, clear=True))
        while ops.service.events.clients == 0:
            await asyncio.sleep(0.01)
        ops.service.events.publish(EventType.FILL, {"side": "SELL", "qty": 0.5, "price": 1.0})
        for i in range(1, 3):
            await asyncio.sleep(0.05)
            ops.store.publish(make_snapshot(realized_pnl=float(i)))
        code = await asyncio.wait_for(task, 10)
    assert code == 0, err.getvalue()
    frames = out.getvalue().split(CLEAR)[1:]
    assert len(frames) == 3
    assert "realized 2.0000" in frames[-1]
    assert "SELL" in frames[-1]


async def test_stream_client_reports_the_close_code(tmp_path: Path) -> None:
    async with serve_ops(tmp_path, api_key=API_KEY, snapshot=make_snapshot()) as ops:
        try:
            async for _ in stream_events(ops.url, "wrong"):
                raise AssertionError("no message may come before the key is checked")
        except HedgeGridStreamClosed as exc:
            assert exc.unauthorized and exc.code == 4401
            assert exc.reason == "wrong X-API-Key"
        else:
            raise AssertionError("the stream did not close")


async def test_async_client_events_yields_the_stream(tmp_path: Path) -> None:
    from hedgegrid_ops.client import AsyncHedgeGridClient

    async with (
        serve_ops(tmp_path, api_key=API_KEY, snapshot=make_snapshot()) as ops,
        AsyncHedgeGridClient(ops.url, api_key=API_KEY) as client,
    ):
        stream = client.events()
        first = await anext(stream)
        await stream.aclose()
    assert first["type"] == "snapshot"
    assert first["data"]["status"]["instrument"] == "BTCUSDT-PERP.BINANCE"

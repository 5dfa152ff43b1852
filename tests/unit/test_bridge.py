"""The bridge's two hand-overs: foreign threads onto the loop, and commands through the queue."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from hedgegrid_ops.api import (
    EmptyRequest,
    FlattenRequest,
    FlattenResult,
    StartResult,
    StopResult,
    ThrottleRequest,
    ThrottleResult,
)
from hedgegrid_ops.commands import Action, Actor, CommandConflict, CommandTimeout
from hedgegrid_ops.loop_bridge import LoopBridge
from hedgegrid_ops.ops.bus import CommandBus
from hedgegrid_ops.ops.views import health_view
from hedgegrid_ops.snapshot import TradingState
from tests.support.inprocess import NeverAnswers, StateTarget, make_snapshot


async def test_timer_thread_callback_runs_on_the_loop_thread() -> None:
    loop = asyncio.get_running_loop()
    bridge = LoopBridge(loop)
    loop_thread = threading.get_ident()
    seen: list[tuple[int, Any]] = []
    done = asyncio.Event()

    def handler(event: Any) -> None:
        seen.append((threading.get_ident(), event))
        done.set()

    callback = bridge.wrap(handler)
    worker = threading.Thread(target=callback, args=("tick",))  # like a Rust timer thread
    worker.start()
    worker.join()
    await asyncio.wait_for(done.wait(), 2)
    assert seen == [(loop_thread, "tick")]
    assert worker.ident != loop_thread


async def test_closed_bridge_drops_late_timer_callbacks() -> None:
    loop = asyncio.get_running_loop()
    bridge = LoopBridge(loop)
    seen: list[Any] = []
    bridge.close()
    worker = threading.Thread(target=bridge.wrap(seen.append), args=("late",))
    worker.start()
    worker.join()
    await asyncio.sleep(0.05)
    assert seen == []


class Recorder(StateTarget):
    """The real ControlTarget stand-in, also noting which thread each command ran on."""

    def __init__(self) -> None:
        super().__init__(positions={"LONG": 0.1, "SHORT": 0.0})
        self.threads: set[int] = set()

    def _enter(self, name: str, arg: Any, reason: str) -> None:
        self.threads.add(threading.get_ident())
        super()._enter(name, arg, reason)


async def test_commands_run_in_submission_order_on_the_loop_thread() -> None:
    audit: list[tuple[str, str]] = []
    bus = CommandBus(timeout=2, audit=lambda cmd, outcome, _r: audit.append((cmd.action, outcome)))
    target = Recorder()
    bus.attach(target)
    bus.start()
    try:
        results = await asyncio.gather(
            bus.submit(Action.STOP, EmptyRequest(), Actor("a")),
            bus.submit(Action.SET_THROTTLE, ThrottleRequest(throttle=0.25), Actor("b")),
            bus.submit(Action.FLATTEN, FlattenRequest(side="long"), Actor("c")),
            bus.submit(Action.START, EmptyRequest(), Actor("d")),
        )
        target.state = TradingState.HALTED
        with pytest.raises(CommandConflict):
            await bus.submit(Action.FLATTEN, FlattenRequest(side="both"), Actor("e"))
    finally:
        await bus.close()
    assert [type(r) for r in results] == [StopResult, ThrottleResult, FlattenResult, StartResult]
    assert [r.status for r in results] == ["stopped", "updated", "flattening", "started"]
    assert [(c[0], c[1]) for c in target.calls] == [
        ("stop", None),
        ("set_throttle", 0.25),
        ("flatten", "long"),
        ("start", None),
        ("flatten", "both"),
    ]
    assert target.calls[0][2] == "stop by a (no key) req -"
    assert target.threads == {threading.get_ident()}
    assert audit[-1] == (Action.FLATTEN, "conflict")
    assert [o for _, o in audit[:4]] == ["ok"] * 4


async def test_a_request_of_the_wrong_kind_is_refused_not_guessed() -> None:
    bus = CommandBus(timeout=2)
    bus.attach(Recorder())
    bus.start()
    try:
        with pytest.raises(ValueError, match="does not take a ThrottleRequest"):
            await bus.submit(Action.FLATTEN, ThrottleRequest(throttle=0.5), Actor("a"))
    finally:
        await bus.close()


async def test_a_dead_consumer_shows_in_health() -> None:
    bus = CommandBus(timeout=0.2)
    bus.attach(StateTarget(fail_with=NeverAnswers()))
    bus.start()
    assert bus.consumer_alive
    with pytest.raises(CommandTimeout):
        await bus.submit(Action.STOP, EmptyRequest(), Actor("a"))
    assert not bus.consumer_alive
    snap = make_snapshot()
    now = snap.last_bar_time or snap.timestamp
    verdict = health_view(snap, True, now, 120.0, commands_alive=bus.consumer_alive)
    assert verdict.http_status == 503
    assert verdict.body.status == "degraded"
    assert "command consumer" in verdict.body.reason
    await bus.close()

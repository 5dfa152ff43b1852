"""The command path from HTTP handlers (and any other caller) onto the strategy.

Handlers never call the strategy directly: they ``submit`` a ``Command`` and await
its result. One consumer task on the event loop takes commands off an
``asyncio.Queue`` and runs them one at a time between strategy events, so a
command never interleaves with half-processed market data. A command whose
caller stopped waiting (timeout) is recorded as expired and is never executed
later behind the caller's back.

The vocabulary (actions, sides, errors, the actor) lives in ``hedgegrid_ops.commands``
so the strategy can raise ``CommandConflict`` without importing the ops layer.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from hedgegrid_ops.api import (
    CommandResult,
    EmptyRequest,
    FlattenRequest,
    FlattenResult,
    Request,
    StartResult,
    StopResult,
    ThrottleRequest,
    ThrottleResult,
)
from hedgegrid_ops.commands import (
    Action,
    Actor,
    CommandConflict,
    CommandTimeout,
    CommandUnavailable,
    FlattenSide,
)


class ControlTarget(Protocol):
    """What the strategy exposes to the bus. Each returns the wire Struct of what changed."""

    def control_start(self, reason: str) -> StartResult: ...
    def control_stop(self, reason: str) -> StopResult: ...
    def control_flatten(self, side: FlattenSide, reason: str) -> FlattenResult: ...
    def control_set_throttle(self, throttle: float, reason: str) -> ThrottleResult: ...


@dataclass
class Command:
    action: Action
    request: Request
    actor: Actor
    id: int = 0
    future: asyncio.Future[CommandResult] | None = None
    expired: bool = False
    submitted_at: float = field(default_factory=time.monotonic)


AuditSink = Callable[[Command, str, CommandResult | dict[str, str] | None], None]


class CommandBus:
    """Queue of commands executed on the loop thread by a single consumer task."""

    def __init__(self, timeout: float = 5.0, audit: AuditSink | None = None) -> None:
        self._queue: asyncio.Queue[Command] = asyncio.Queue()
        self._timeout = timeout
        self._target: ControlTarget | None = None
        self._consumer: asyncio.Task[None] | None = None
        self._ids = itertools.count(1)
        self._audit = audit

    @property
    def consumer_alive(self) -> bool:
        """False once the consumer task has ended while the bus is open (commands would 504)."""
        return self._consumer is None or not self._consumer.done()

    def attach(self, target: ControlTarget) -> None:
        self._target = target

    def start(self) -> None:
        if self._consumer is None:
            self._consumer = asyncio.get_running_loop().create_task(
                self._consume(), name="hedgegrid-command-consumer"
            )

    async def close(self) -> None:
        if self._consumer is not None:
            self._consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._consumer
            self._consumer = None
        while not self._queue.empty():
            cmd = self._queue.get_nowait()
            if cmd.future is not None and not cmd.future.done():
                cmd.future.set_exception(CommandUnavailable("the service is shutting down"))

    async def submit(self, action: Action, request: Request, actor: Actor) -> CommandResult:
        if self._target is None or self._consumer is None:
            raise CommandUnavailable("the strategy is not running")
        loop = asyncio.get_running_loop()
        cmd = Command(action, request, actor, id=next(self._ids), future=loop.create_future())
        assert cmd.future is not None
        self._queue.put_nowait(cmd)
        try:
            return await asyncio.wait_for(asyncio.shield(cmd.future), self._timeout)
        except TimeoutError:
            if cmd.future.done():  # finished in the same tick the timeout fired
                return cmd.future.result()
            cmd.expired = True
            self._record(cmd, "expired", None)
            raise CommandTimeout(
                f"no answer from the strategy within {self._timeout:g}s; the command was dropped"
            ) from None

    async def _consume(self) -> None:
        while True:
            cmd = await self._queue.get()
            if cmd.expired:
                continue  # already answered 504 and audited; never run it late
            assert cmd.future is not None
            try:
                result = self._execute(cmd)
            except CommandConflict as exc:
                self._record(cmd, "conflict", {"detail": str(exc)})
                cmd.future.set_exception(exc)
            except Exception as exc:
                self._record(cmd, "error", {"detail": repr(exc)})
                cmd.future.set_exception(exc)
            else:
                self._record(cmd, "ok", result)
                cmd.future.set_result(result)

    def _execute(self, cmd: Command) -> CommandResult:
        target = self._target
        if target is None:
            raise CommandUnavailable("the strategy is not running")
        reason = f"{cmd.action.value} by {cmd.actor}"
        match cmd.action, cmd.request:
            case Action.START, EmptyRequest():
                return target.control_start(reason)
            case Action.STOP, EmptyRequest():
                return target.control_stop(reason)
            case Action.FLATTEN, FlattenRequest(side=side):
                return target.control_flatten(side, reason)
            case Action.SET_THROTTLE, ThrottleRequest(throttle=throttle):
                return target.control_set_throttle(throttle, reason)
        raise ValueError(f"{cmd.action} does not take a {type(cmd.request).__name__}")

    def _record(
        self, cmd: Command, outcome: str, result: CommandResult | dict[str, str] | None
    ) -> None:
        if self._audit is not None:
            with contextlib.suppress(Exception):  # a failing audit sink must not lose the answer
                self._audit(cmd, outcome, result)

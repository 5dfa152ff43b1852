"""Audit trail of control actions: who asked for what, with which parameters, and what happened.

Two sources feed it. The ``CommandBus`` reports what it actually did with a command
(ok / conflict / error / expired) through ``command_audit_sink``, which is the
authoritative record even when the HTTP client has gone away. The routes report
attempts that never reached the bus (unauthorized, invalid body, no strategy).

The actor (``hedgegrid_ops.commands.Actor``) carries the client address, whether
the API key was presented and the request id; the audit line has them as separate
fields. The key itself is never recorded.

Audit before answer: each line's write to ``audit.log`` (fsynced) yields a receipt,
filed under the request id. The HTTP layer awaits ``confirm(request_id)`` before it
sends the answer, and says so in the answer when the entry could not be recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import msgspec

from hedgegrid_ops.commands import Actor
from hedgegrid_ops.logs import AUDIT, get_logger, receipts
from hedgegrid_ops.ops.bus import Command

_audit_log = get_logger("audit", AUDIT)

AuditListener = Callable[[dict[str, Any]], None]
_listeners: list[AuditListener] = []


def add_audit_listener(listener: AuditListener) -> None:
    """Also hand every audit record to ``listener`` (the live event stream shows them)."""
    _listeners.append(listener)


def remove_audit_listener(listener: AuditListener) -> None:
    with contextlib.suppress(ValueError):
        _listeners.remove(listener)


# Receipts of audit lines not yet confirmed, by request id. Popped by ``confirm``;
# bounded because a request that never asks (e.g. its handler was cancelled) must not
# leak: the oldest entries go first.
_pending: dict[str, list[Future[bool]]] = {}
MAX_PENDING_REQUESTS = 1024
CONFIRM_TIMEOUT = 2.0


def _record(**fields: Any) -> None:
    with receipts() as collected:
        _audit_log.info("control_action", **fields)
    request_id = fields.get("request_id")
    if request_id is not None and collected:
        _pending.setdefault(request_id, []).extend(collected)
        while len(_pending) > MAX_PENDING_REQUESTS:
            _pending.pop(next(iter(_pending)))
    for listener in list(_listeners):
        with contextlib.suppress(Exception):  # a failing viewer must not lose the audit line
            listener(fields)


def _who(actor: Actor) -> dict[str, Any]:
    return {"client": actor.client, "key_used": actor.key_used, "request_id": actor.request_id}


def command_audit_sink(
    cmd: Command, outcome: str, result: msgspec.Struct | dict[str, str] | None
) -> None:
    """``CommandBus(audit=...)`` callback: one audit line per executed or expired command."""
    _record(
        action=cmd.action.value,
        params=msgspec.to_builtins(cmd.request),
        outcome=outcome,
        result=msgspec.to_builtins(result),
        command_id=cmd.id,
        waited_ms=round((time.monotonic() - cmd.submitted_at) * 1000.0, 3),
        source="bus",
        **_who(cmd.actor),
    )


def audit_attempt(
    action: str, params: dict[str, Any], actor: Actor, outcome: str, detail: str
) -> None:
    """A control request refused before it reached the bus (it changed nothing)."""
    _record(
        action=action,
        params=params,
        outcome=outcome,
        detail=detail,
        source="api",
        **_who(actor),
    )


async def confirm(request_id: str, timeout: float = CONFIRM_TIMEOUT) -> bool | None:
    """Wait until every audit line of ``request_id`` is on disk.

    None: the request wrote no audit line. True: all written. False: at least one
    could not be written within ``timeout`` (full disk, failing file, stuck writer).
    """
    pending = _pending.pop(request_id, None)
    if not pending:
        return None
    try:
        async with asyncio.timeout(timeout):
            results = [await asyncio.wrap_future(f) for f in pending]
    except TimeoutError:
        return False
    return all(results)

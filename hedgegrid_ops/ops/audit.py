"""Audit trail of control actions: who asked for what, with which parameters, and what happened.

Two sources feed it. The ``CommandBus`` reports what it actually did with a command
(ok / conflict / error / expired) through ``command_audit_sink``, which is the
authoritative record even when the HTTP client has gone away. The routes report
attempts that never reached the bus (unauthorized, invalid body, no strategy).

The actor handed to the bus is an ``Actor``: a ``str`` (the bus and the strategy
only need text for their "stop by ..." reasons) that also carries the client
address, whether the API key was presented and the request id, so the audit line
has them as separate fields. The key itself is never recorded.
"""

from __future__ import annotations

import time
from typing import Any

from hedgegrid_ops.logs import AUDIT, get_logger
from hedgegrid_ops.ops.bridge import Command


class Actor(str):
    """Text like ``127.0.0.1 (api key) req 3f2a...`` plus its parts as attributes."""

    client: str
    key_used: bool
    request_id: str

    def __new__(cls, client: str, key_used: bool, request_id: str) -> Actor:
        auth = "api key" if key_used else "no key"
        self = super().__new__(cls, f"{client} ({auth}) req {request_id}")
        self.client = client
        self.key_used = key_used
        self.request_id = request_id
        return self


def _who(actor: str) -> dict[str, Any]:
    if isinstance(actor, Actor):
        return {
            "client": actor.client,
            "key_used": actor.key_used,
            "request_id": actor.request_id,
        }
    return {"actor": str(actor)}


def command_audit_sink(cmd: Command, outcome: str, result: dict[str, Any] | None) -> None:
    """``CommandBus(audit=...)`` callback: one audit line per executed or expired command."""
    get_logger("audit", AUDIT).info(
        "control_action",
        action=cmd.action.value,
        params=cmd.params,
        outcome=outcome,
        result=result,
        command_id=cmd.id,
        waited_ms=round((time.monotonic() - cmd.submitted_at) * 1000.0, 3),
        source="bus",
        **_who(cmd.actor),
    )


def audit_attempt(
    action: str, params: dict[str, Any], actor: Actor, outcome: str, detail: str
) -> None:
    """A control request refused before it reached the bus (it changed nothing)."""
    get_logger("audit", AUDIT).info(
        "control_action",
        action=action,
        params=params,
        outcome=outcome,
        detail=detail,
        source="api",
        **_who(actor),
    )

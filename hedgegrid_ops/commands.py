"""The command vocabulary shared by every layer: what an operator can ask, and how it can fail.

This module sits beside ``snapshot.py`` and imports nothing of ours, so the strategy
(which executes commands), the ops layer (which transports them over HTTP) and the
client (which sends them) all name commands, sides and failures the same way
without importing each other.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, get_args


class Action(StrEnum):
    """Every command the strategy accepts; the value is the audit-log name."""

    START = "start"
    STOP = "stop"
    FLATTEN = "flatten"
    SET_THROTTLE = "set_throttle"


FlattenSide = Literal["long", "short", "both"]
"""Which hedge leg(s) a flatten closes."""

FLATTEN_SIDES: tuple[FlattenSide, ...] = get_args(FlattenSide)


class CommandConflict(Exception):
    """The command makes no sense in the current trading state (HTTP 409)."""


class CommandTimeout(Exception):
    """No answer from the strategy within the timeout (HTTP 504)."""


class CommandUnavailable(Exception):
    """No strategy is attached or the command bus is shut down (HTTP 503)."""


@dataclass(frozen=True, slots=True)
class Actor:
    """Who sent a command: the client address, whether the API key was presented, the request id.

    ``str(actor)`` is the short text the strategy puts into its "stop by ..." reasons;
    the audit log records the three parts as separate fields. The key itself is
    never carried.
    """

    client: str
    key_used: bool = False
    request_id: str = "-"

    def __str__(self) -> str:
        auth = "api key" if self.key_used else "no key"
        return f"{self.client} ({auth}) req {self.request_id}"


REQUEST_TAG_PREFIX = "request_id="


def request_id_of(reason: str) -> str | None:
    """The request id inside a command reason ("flatten by <actor>"), if it names one.

    Reasons are built from :class:`Actor`, whose text ends in ``req <id>``; this reads
    that part back so an order a command causes can carry the request that caused it.
    """
    _, marker, rest = reason.rpartition(" req ")
    request_id = rest.split()[0] if marker and rest.strip() else None
    return request_id if request_id and request_id != "-" else None


def request_id_from_tags(tags: Iterable[str] | None) -> str | None:
    """The request id an order was tagged with (``request_id=<id>``), if any."""
    for tag in tags or ():
        if tag.startswith(REQUEST_TAG_PREFIX):
            return tag[len(REQUEST_TAG_PREFIX) :]
    return None

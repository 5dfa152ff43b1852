"""Client order ids that carry side, role and level.

After a restart or reconnect the strategy rebuilds its view of the grid from
the venue's open orders alone, so everything it needs to re-attach an order
to a rung must be recoverable from the id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hedgegrid_ops.grid.types import OrderRole, PositionSide

PREFIX = "HG1"
MAX_LENGTH = 36  # Binance's limit for newClientOrderId

_ROLE_TAG: dict[OrderRole, str] = {
    OrderRole.GRID: "",
    OrderRole.TAKE_PROFIT: "TP",
    OrderRole.STOP_LOSS: "SL",
    OrderRole.FLATTEN: "FL",
}
_TAG_ROLE: dict[str, OrderRole] = {tag: role for role, tag in _ROLE_TAG.items()}

# [0-9] rather than \d: \d also matches non-ASCII digits, which we never emit.
_PATTERN = re.compile(r"HG1-(LONG|SHORT)-(TP|SL|FL)?([0-9]{2})-([1-9][0-9]*)")


@dataclass(frozen=True)
class ParsedOrderId:
    """What a client order id says about the order."""

    side: PositionSide
    role: OrderRole
    level: int
    seq: int


def format_client_order_id(side: PositionSide, role: OrderRole, level: int, seq: int) -> str:
    """Build e.g. ``HG1-LONG-03-17`` (grid) or ``HG1-SHORT-TP03-18`` (take profit)."""
    if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= 99:
        raise ValueError(f"level must be an integer in 0..99, got {level!r}")
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
        raise ValueError(f"seq must be a positive integer, got {seq!r}")
    value = f"{PREFIX}-{PositionSide(side).value}-{_ROLE_TAG[OrderRole(role)]}{level:02d}-{seq}"
    if len(value) > MAX_LENGTH:
        raise ValueError(f"client order id {value!r} is longer than {MAX_LENGTH} characters")
    return value


def parse_client_order_id(value: str) -> ParsedOrderId | None:
    """Parse an id produced by ``format_client_order_id``; None for anything else.

    Returning None (instead of raising) lets the strategy skip orders that
    other strategies or a human placed on the same account.
    """
    if not isinstance(value, str) or len(value) > MAX_LENGTH:
        return None
    match = _PATTERN.fullmatch(value)
    if match is None:
        return None
    side, tag, level, seq = match.groups()
    return ParsedOrderId(
        side=PositionSide(side),
        role=_TAG_ROLE[tag or ""],
        level=int(level),
        seq=int(seq),
    )

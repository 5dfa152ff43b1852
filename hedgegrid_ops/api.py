"""Every request and response body of the control API, declared once as msgspec Structs.

The server builds these Structs (``ops/views.py`` from a snapshot, the strategy's
``control_*`` methods for command results) and encodes them; it decodes request
bodies into them, so validation *is* decoding. ``ops/openapi.py`` generates the
document's components from them, and ``client.py`` decodes answers into the same
classes. A field exists in one place: add it here and fill it where the Struct is
built; the OpenAPI document and the client follow, and the schema tests fail if a
response carries a field that is not declared here.

This module is neutral: it imports only the command vocabulary, the snapshot's
value Structs and the grid's value types, never the ops layer or the strategy.

``COMMAND_ROUTES`` and ``READ_ROUTES`` are the table of JSON endpoints: path, Struct
and summary. The server registers its handlers from it, the OpenAPI ``paths`` are
built from it, and the client's methods name it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated, Literal

import msgspec

from hedgegrid_ops.commands import Action, FlattenSide
from hedgegrid_ops.grid.types import PositionSide, Regime
from hedgegrid_ops.snapshot import (
    Counters,
    KillSwitchView,
    OrderView,
    RungView,
    SideState,
    TradingState,
)

__all__ = [
    "COMMAND_ROUTES",
    "ERROR_CODES",
    "MAX_BODY_BYTES",
    "READ_ROUTES",
    "CommandResult",
    "CommandRoute",
    "Counters",
    "DayPnl",
    "EmptyRequest",
    "Error",
    "Fill",
    "Fills",
    "FillsQuery",
    "FlattenRequest",
    "FlattenResult",
    "Funding",
    "Health",
    "HealthStatus",
    "Ladders",
    "OrderView",
    "Orders",
    "Pnl",
    "PnlDaily",
    "Positions",
    "ReadRoute",
    "Request",
    "RungView",
    "SideState",
    "StartResult",
    "Status",
    "StopResult",
    "ThrottleRequest",
    "ThrottleResult",
]


def _enum(values: list[str], description: str | None = None) -> msgspec.Meta:
    """Schema-only enum for a ``str`` field whose values are not a Python enum."""
    extra: dict[str, object] = {"enum": values}
    return msgspec.Meta(extra_json_schema=extra, description=description)


# --------------------------------------------------------------------------- errors

MAX_BODY_BYTES = 64 * 1024
"""Largest request body the server reads; a larger one is answered 413."""

# Every error code the server can answer with, by HTTP status. Clients branch on the code.
ERROR_CODES: dict[int, tuple[str, ...]] = {
    400: (
        "invalid_json",
        "invalid_type",
        "out_of_range",
        "invalid_side",
        "missing_field",
        "unknown_field",
        "malformed_request",
    ),
    401: ("unauthorized",),
    403: ("forbidden_origin",),
    404: ("not_found",),
    405: ("method_not_allowed",),
    408: ("request_timeout",),
    409: ("conflict",),
    413: ("payload_too_large",),
    415: ("unsupported_media_type",),
    421: ("misdirected_request",),
    426: ("upgrade_required",),
    429: ("too_many_requests",),
    500: ("internal_error",),
    503: ("unavailable", "overloaded"),
    504: ("timeout",),
}


class Error(msgspec.Struct, frozen=True):
    """Every failure: a stable ``error`` code, a sentence for people, and the request id."""

    error: Annotated[str, _enum([c for codes in ERROR_CODES.values() for c in codes])]
    detail: str
    request_id: str


# --------------------------------------------------------------------------- requests


class Request(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Base of every request body: an unknown field is an error, never ignored.

    Subclasses repeat ``frozen=True``: msgspec inherits it, but type checkers read
    each class's own keywords.
    """


class EmptyRequest(Request, frozen=True):
    """No fields; the body may also be empty (``/start``, ``/stop``)."""


class FlattenRequest(Request, frozen=True):
    side: FlattenSide


class ThrottleRequest(Request, frozen=True):
    throttle: Annotated[
        float, msgspec.Meta(ge=0.0, le=1.0, description="0.0 (passive) .. 1.0 (aggressive)")
    ]


# --------------------------------------------------------------------------- reads

HealthStatus = Literal["healthy", "degraded", "down"]
HEALTH_STATES: list[str] = [s.value for s in TradingState] + ["unknown"]


class Health(msgspec.Struct, frozen=True):
    """GET /health. The server's verdict is final: clients only map ``status`` to exit codes."""

    status: HealthStatus
    uptime: float
    last_bar: float | None
    trading_state: Annotated[str, _enum(HEALTH_STATES)]
    bar_age_seconds: float | None
    reason: (
        Annotated[
            str, msgspec.Meta(description="Why the service is not healthy (present on 503 only).")
        ]
        | msgspec.UnsetType
    ) = msgspec.UNSET


class Positions(msgspec.Struct, frozen=True):
    long: SideState
    short: SideState


class Pnl(msgspec.Struct, frozen=True):
    realized: float
    unrealized: float
    total: float


class Funding(msgspec.Struct, frozen=True):
    rate: float
    next_funding_time: float | None
    cost_1h_projected_usdt: float
    scale_long: float
    scale_short: float


class Status(msgspec.Struct, frozen=True):
    """GET /status: everything an operator may ask about, as of ``timestamp``."""

    running: bool
    trading_state: TradingState
    state_reason: str
    instrument: str
    positions: Positions
    margin_ratio: Annotated[
        float | None, msgspec.Meta(description="null: margin in use with no equity left")
    ]
    open_orders: int
    pnl: Pnl
    timestamp: float
    balance_usdt: float
    equity_usdt: float
    margin_used_usdt: float
    mid_price: float | None
    grid_center: float | None
    regime: Regime
    throttle: float
    maker_ratio: float
    funding: Funding
    counters: Counters
    uptime: float
    last_bar: float | None
    last_bar_event_time: float | None
    kill_switch: KillSwitchView


class Ladders(msgspec.Struct, frozen=True):
    """GET /ladders: the grid rungs as placed at the venue (or in flight to it)."""

    timestamp: float
    mid_price: float | None
    grid_center: float | None
    throttle: float
    long_ladder: list[RungView]
    short_ladder: list[RungView]


class Orders(msgspec.Struct, frozen=True):
    """GET /orders: every open order of the strategy, grid and exits.

    ``foreign_orders`` (live mode): open orders on the instrument that the strategy did
    not place; listed so an operator sees them, never touched, not in ``count``.
    """

    orders: list[OrderView]
    count: int
    timestamp: float
    foreign_orders: list[OrderView] = msgspec.field(default_factory=list)


MAX_FILLS_PAGE = 1000


class FillsQuery(Request, frozen=True):
    """The query string of GET /fills (validated like a body: unknown keys are errors).

    Absent parameters are ``UNSET``, not ``None``: a query string cannot say null, and
    ``?since=null`` must be a 400 rather than "no bound".
    """

    since: (
        Annotated[
            float,
            msgspec.Meta(ge=0, description="Only fills at or after this time (unix seconds)."),
        ]
        | msgspec.UnsetType
    ) = msgspec.UNSET
    before: (
        Annotated[
            int,
            msgspec.Meta(
                ge=1, description="Only fills older than this `seq` (the previous page's next)."
            ),
        ]
        | msgspec.UnsetType
    ) = msgspec.UNSET
    limit: Annotated[
        int, msgspec.Meta(ge=1, le=MAX_FILLS_PAGE, description="Page size, newest first.")
    ] = 100


class Fill(msgspec.Struct, frozen=True):
    """One execution, as the venue reported it, with the realized PnL it caused."""

    seq: Annotated[int, msgspec.Meta(description="Order of recording; the paging cursor.")]
    time: Annotated[float, msgspec.Meta(description="Venue event time, unix seconds.")]
    trade_id: str
    client_order_id: str
    venue_order_id: str
    side: Literal["BUY", "SELL"]
    position_side: PositionSide | None
    price: float
    qty: float
    commission: float
    commission_asset: str
    liquidity: Literal["maker", "taker"]
    realized_pnl: Annotated[
        float,
        msgspec.Meta(
            description="Change of the position's realized PnL this fill caused, net of its "
            "commission (as /status pnl.realized)."
        ),
    ]
    request_id: Annotated[
        str | None,
        msgspec.Meta(description="The control request that caused the order (flatten closes)."),
    ]


class Fills(msgspec.Struct, frozen=True):
    """GET /fills: a page of the fill history from the state directory, newest first."""

    fills: list[Fill]
    count: int
    next_before: Annotated[
        int | None,
        msgspec.Meta(description="Pass as `before` for the next (older) page; null: no more."),
    ]
    timestamp: float


class DayPnl(msgspec.Struct, frozen=True):
    """One UTC day of the history."""

    day: Annotated[str, msgspec.Meta(description="UTC date, YYYY-MM-DD.")]
    realized_pnl: Annotated[
        float, msgspec.Meta(description="Sum of the day's fills' realized PnL (net of fees).")
    ]
    fees: Annotated[float, msgspec.Meta(description="USDT commissions paid that day.")]
    funding: Annotated[
        float, msgspec.Meta(description="Funding paid that day (USDT, > 0 paid, < 0 received).")
    ]
    fills: int


class PnlDaily(msgspec.Struct, frozen=True):
    """GET /pnl/daily: one row per UTC day with a fill or a funding payment, oldest first."""

    days: list[DayPnl]
    timestamp: float


# --------------------------------------------------------------------------- command results


class CommandResult(msgspec.Struct, frozen=True, kw_only=True):
    """Base of every command answer; ``timestamp`` is when the strategy answered."""

    timestamp: float = msgspec.field(default_factory=time.time)


class StartResult(CommandResult, frozen=True):
    status: Literal["started", "already_running"]
    previous_state: TradingState
    trading_state: TradingState


class StopResult(CommandResult, frozen=True):
    status: Literal["stopped", "already_stopped"]
    previous_state: TradingState
    trading_state: TradingState
    cancelled_orders: int


class FlattenResult(CommandResult, frozen=True):
    status: Literal["flattening"]
    side: FlattenSide
    cancelled_orders: int
    closing_positions: Annotated[
        list[PositionSide],
        msgspec.Meta(description="Sides that had a position and got a close order now."),
    ]
    already_closing: list[PositionSide]
    trading_state: TradingState


class ThrottleResult(CommandResult, frozen=True):
    status: Literal["updated", "unchanged"]
    new_throttle: float
    previous_throttle: float


# --------------------------------------------------------------------------- the route table


@dataclass(frozen=True)
class ReadRoute:
    """A GET endpoint answering one Struct.

    ``errors``: statuses answered with ``Error`` besides 401/500 (added for every route);
    ``also``: statuses other than 200 answered with the same Struct and their meaning;
    ``query``: the Struct the query string decodes into (None: the route takes none).
    """

    path: str
    response: type[msgspec.Struct]
    summary: str
    errors: tuple[int, ...] = (503,)
    also: tuple[tuple[int, str], ...] = ()
    query: type[Request] | None = None


@dataclass(frozen=True)
class CommandRoute:
    """A POST endpoint: the body decodes into ``request``, the strategy answers ``result``."""

    path: str
    action: Action
    request: type[Request]
    result: type[CommandResult]
    summary: str
    ok: str

    @property
    def body_required(self) -> bool:
        return bool(self.request.__struct_fields__)


READ_ROUTES: tuple[ReadRoute, ...] = (
    ReadRoute(
        "/health",
        Health,
        "Liveness and data freshness: the verdict",
        errors=(),
        also=((503, "Degraded or down, with a reason"),),
    ),
    ReadRoute("/status", Status, "Full strategy status"),
    ReadRoute("/ladders", Ladders, "Grid ladders as placed"),
    ReadRoute("/orders", Orders, "Open orders"),
    ReadRoute(
        "/fills",
        Fills,
        "Fill history from the state directory, newest first (paged)",
        errors=(400, 503),
        query=FillsQuery,
    ),
    ReadRoute("/pnl/daily", PnlDaily, "Realized PnL, fees, funding and fills per UTC day"),
)

COMMAND_ROUTES: tuple[CommandRoute, ...] = (
    CommandRoute(
        "/start",
        Action.START,
        EmptyRequest,
        StartResult,
        "Resume grid trading (409 when halted)",
        "Started or already running",
    ),
    CommandRoute(
        "/stop",
        Action.STOP,
        EmptyRequest,
        StopResult,
        "Pause grid trading: cancel grid orders, keep exits",
        "Stopped or already stopped",
    ),
    CommandRoute(
        "/flatten",
        Action.FLATTEN,
        FlattenRequest,
        FlattenResult,
        "Cancel orders and close positions on one or both sides",
        "Flattening",
    ),
    CommandRoute(
        "/set-throttle",
        Action.SET_THROTTLE,
        ThrottleRequest,
        ThrottleResult,
        "Set grid aggressiveness 0.0 (passive) .. 1.0 (aggressive)",
        "Updated or unchanged",
    ),
)

COMMAND_BY_PATH: dict[str, CommandRoute] = {c.path: c for c in COMMAND_ROUTES}
COMMAND_BY_ACTION: dict[Action, CommandRoute] = {c.action: c for c in COMMAND_ROUTES}

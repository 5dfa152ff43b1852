"""The OpenAPI 3.1 description of the control API, built from the same facts the code uses.

Error codes come from ``errors.ERROR_CODES``, counter fields from the ``Counters``
struct, trading states from ``TradingState``, and the security section follows the
configured key, so the document served at ``/openapi.json`` describes this server
as it is running. Tests check that its paths are exactly the registered routes and
that real responses match the schemas.
"""

from __future__ import annotations

from typing import Any

import msgspec

import hedgegrid_ops
from hedgegrid_ops.ops.auth import API_KEY_HEADER, OPEN_ROUTES
from hedgegrid_ops.ops.errors import ERROR_CODES
from hedgegrid_ops.snapshot import Counters, TradingState

JSON = "application/json"
Schema = dict[str, Any]

_STATUS_TEXT = {
    200: "OK",
    400: "Invalid request body",
    401: "Missing or wrong API key",
    404: "Not found",
    409: "Not allowed in the current trading state",
    413: "Body over 64 KiB",
    426: "Not a WebSocket upgrade request",
    500: "Internal error (details are in the server log under the request id)",
    503: "No strategy state or no strategy attached",
    504: "The strategy did not answer within the command timeout",
}


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _num() -> Schema:
    return {"type": "number"}


def _nullable_num() -> Schema:
    return {"type": ["number", "null"]}


def _obj(props: dict[str, Schema], *, closed: bool = False) -> Schema:
    schema: Schema = {"type": "object", "properties": props, "required": list(props)}
    if closed:
        schema["additionalProperties"] = False
    return schema


def _counters_schema() -> Schema:
    props: dict[str, Schema] = {}
    for field in msgspec.structs.fields(Counters):
        props[field.name] = {"type": "integer" if field.type is int else "number"}
    return _obj(props)


def _schemas() -> dict[str, Schema]:
    states = [s.value for s in TradingState]
    side = _obj(
        {
            "inventory_usdt": _num(),
            "quantity": _num(),
            "entry_price": _num(),
            "unrealized_pnl": _num(),
        }
    )
    health = _obj(
        {
            "status": {"type": "string", "enum": ["healthy", "degraded", "down"]},
            "uptime": _num(),
            "last_bar": _nullable_num(),
            "trading_state": {"type": "string", "enum": [*states, "unknown"]},
            "bar_age_seconds": _nullable_num(),
        }
    )
    health["properties"]["reason"] = {
        "type": "string",
        "description": "Why the service is not healthy (present on 503 only).",
    }
    all_codes = [code for codes in ERROR_CODES.values() for code in codes]
    return {
        "Error": _obj(
            {
                "error": {"type": "string", "enum": all_codes},
                "detail": {"type": "string"},
                "request_id": {"type": "string"},
            }
        ),
        "Health": health,
        "SideState": side,
        "Counters": _counters_schema(),
        "Status": _obj(
            {
                "running": {"type": "boolean"},
                "trading_state": {"type": "string", "enum": states},
                "state_reason": {"type": "string"},
                "instrument": {"type": "string"},
                "positions": _obj({"long": _ref("SideState"), "short": _ref("SideState")}),
                "margin_ratio": _nullable_num(),  # null: margin in use with no equity left (+Inf)
                "open_orders": {"type": "integer"},
                "pnl": _obj({"realized": _num(), "unrealized": _num(), "total": _num()}),
                "timestamp": _num(),
                "balance_usdt": _num(),
                "equity_usdt": _num(),
                "margin_used_usdt": _num(),
                "mid_price": _nullable_num(),
                "grid_center": _nullable_num(),
                "regime": {"type": "string"},
                "throttle": _num(),
                "maker_ratio": _num(),
                "funding": _obj(
                    {
                        "rate": _num(),
                        "next_funding_time": _nullable_num(),
                        "cost_1h_projected_usdt": _num(),
                        "scale_long": _num(),
                        "scale_short": _num(),
                    }
                ),
                "counters": _ref("Counters"),
                "uptime": _num(),
                "last_bar": _nullable_num(),
                "last_bar_event_time": _nullable_num(),
            }
        ),
        "Rung": _obj(
            {
                "price": _num(),
                "qty": _num(),
                "rung": {"type": "integer"},
                "client_order_id": {"type": "string"},
                "status": {"type": "string"},
            }
        ),
        "Ladders": _obj(
            {
                "timestamp": _num(),
                "mid_price": _nullable_num(),
                "grid_center": _nullable_num(),
                "throttle": _num(),
                "long_ladder": {"type": "array", "items": _ref("Rung")},
                "short_ladder": {"type": "array", "items": _ref("Rung")},
            }
        ),
        "Order": _obj(
            {
                "client_order_id": {"type": "string"},
                "side": {"type": "string", "enum": ["BUY", "SELL"]},
                "position_side": {"type": "string", "enum": ["LONG", "SHORT"]},
                "role": {"type": "string"},
                "rung": {"type": ["integer", "null"]},
                "order_type": {"type": "string"},
                "price": _nullable_num(),
                "trigger_price": _nullable_num(),
                "quantity": _num(),
                "filled_qty": _num(),
                "status": {"type": "string"},
            }
        ),
        "Orders": _obj(
            {
                "orders": {"type": "array", "items": _ref("Order")},
                "count": {"type": "integer"},
                "timestamp": _num(),
            }
        ),
        "EmptyRequest": {
            "type": "object",
            "maxProperties": 0,
            "description": "No fields; the body may also be empty.",
        },
        "StartResult": _obj(
            {
                "status": {"type": "string", "enum": ["started", "already_running"]},
                "previous_state": {"type": "string", "enum": states},
                "trading_state": {"type": "string", "enum": states},
                "timestamp": _num(),
            }
        ),
        "StopResult": _obj(
            {
                "status": {"type": "string", "enum": ["stopped", "already_stopped"]},
                "previous_state": {"type": "string", "enum": states},
                "trading_state": {"type": "string", "enum": states},
                "cancelled_orders": {"type": "integer"},
                "timestamp": _num(),
            }
        ),
        "FlattenRequest": _obj(
            {"side": {"type": "string", "enum": ["long", "short", "both"]}}, closed=True
        ),
        "FlattenResult": _obj(
            {
                "status": {"type": "string", "enum": ["flattening"]},
                "side": {"type": "string", "enum": ["long", "short", "both"]},
                "cancelled_orders": {"type": "integer"},
                "closing_positions": {
                    "type": "array",
                    "items": {"type": "string", "enum": ["LONG", "SHORT"]},
                    "description": "Sides that had a position and got a close order now.",
                },
                "already_closing": {
                    "type": "array",
                    "items": {"type": "string", "enum": ["LONG", "SHORT"]},
                },
                "trading_state": {"type": "string", "enum": states},
                "timestamp": _num(),
            }
        ),
        "ThrottleRequest": _obj(
            {"throttle": {"type": "number", "minimum": 0.0, "maximum": 1.0}}, closed=True
        ),
        "ThrottleResult": _obj(
            {
                "status": {"type": "string", "enum": ["updated", "unchanged"]},
                "new_throttle": _num(),
                "previous_throttle": _num(),
                "timestamp": _num(),
            }
        ),
    }


_REQUEST_ID_HEADER = {"X-Request-ID": {"$ref": "#/components/headers/RequestId"}}


def _json_response(description: str, schema_name: str) -> Schema:
    return {
        "description": description,
        "headers": _REQUEST_ID_HEADER,
        "content": {JSON: {"schema": _ref(schema_name)}},
    }


def _error(status: int) -> Schema:
    codes = ", ".join(ERROR_CODES[status])
    return _json_response(f"{_STATUS_TEXT[status]} (error: {codes})", "Error")


def _operation(
    path: str,
    summary: str,
    ok: Schema,
    errors: tuple[int, ...],
    auth_enabled: bool,
    body: str | None = None,
    body_required: bool = True,
) -> Schema:
    protected = auth_enabled and path not in OPEN_ROUTES
    statuses = sorted({*errors, 500, *((401,) if protected else ())})
    op: Schema = {
        "summary": summary,
        "operationId": path.strip("/").replace("/", "_").replace("-", "_").replace(".", "_")
        or "root",
        "responses": {"200": ok, **{str(s): _error(s) for s in statuses}},
    }
    if auth_enabled:
        op["security"] = [{"ApiKeyAuth": []}] if protected else []
    if body is not None:
        op["requestBody"] = {
            "required": body_required,
            "content": {JSON: {"schema": _ref(body)}},
        }
    return op


def _text(description: str, media: dict[str, Schema]) -> Schema:
    return {"description": description, "headers": _REQUEST_ID_HEADER, "content": media}


_EVENTS_DESCRIPTION = (
    "WebSocket (RFC 6455) of JSON messages {type, seq, time, data}: the latest snapshot on "
    "connect, then snapshots (at most 4/s), fill, order, trading_state, throttle, flatten, "
    "kill_switch, audit and heartbeat messages (see docs/operations.md). Authenticate with "
    "the X-API-Key header or, from a browser, a first message "
    '{"type": "auth", "key": "..."}; a missing or wrong key closes with code 4401, a '
    "client that falls behind is closed with 4408, a full server with 1013. OpenAPI cannot "
    "describe the messages themselves; only the upgrade is documented here."
)


def _page_paths(a: bool) -> dict[str, Any]:
    """The operator page, its assets and the /events WebSocket upgrade."""
    html = _text("Operator page", {"text/html": {"schema": {"type": "string"}}})
    events_op = _operation("/events", "Live event stream (WebSocket)", html, (426,), a)
    events_op["description"] = _EVENTS_DESCRIPTION
    events_op["responses"] = {
        "101": {"description": "Switching Protocols: the WebSocket is open"},
        **{k: v for k, v in events_op["responses"].items() if k != "200"},
    }
    asset = _operation(
        "/ui/static/{filename}",
        "Operator page asset",
        _text(
            "Asset",
            {
                "text/javascript": {"schema": {"type": "string"}},
                "text/css": {"schema": {"type": "string"}},
                "image/svg+xml": {"schema": {"type": "string"}},
            },
        ),
        (404,),
        a,
    )
    asset["parameters"] = [
        {"name": "filename", "in": "path", "required": True, "schema": {"type": "string"}}
    ]
    return {
        "/": {"get": _operation("/", "Operator page (no CDN, no build step)", html, (), a)},
        "/ui": {"get": _operation("/ui", "Operator page (same as /)", html, (), a)},
        "/ui/static/{filename}": {"get": asset},
        "/events": {"get": events_op},
    }


def build_openapi(auth_enabled: bool) -> dict[str, Any]:
    """The document for a server with (``auth_enabled``) or without an API key."""
    a = auth_enabled
    command_errors = (400, 409, 413, 503, 504)
    health_503 = _json_response("Degraded or down, with a reason", "Health")
    health_op = _operation(
        "/health", "Liveness and data freshness", _json_response("Healthy", "Health"), (), a
    )
    health_op["responses"]["503"] = health_503
    health_op["responses"] = dict(sorted(health_op["responses"].items()))
    paths: dict[str, Any] = {
        "/health": {"get": health_op},
        "/status": {
            "get": _operation(
                "/status", "Full strategy status", _json_response("Status", "Status"), (503,), a
            )
        },
        "/ladders": {
            "get": _operation(
                "/ladders",
                "Grid ladders as placed",
                _json_response("Ladders", "Ladders"),
                (503,),
                a,
            )
        },
        "/orders": {
            "get": _operation(
                "/orders", "Open orders", _json_response("Orders", "Orders"), (503,), a
            )
        },
        "/start": {
            "post": _operation(
                "/start",
                "Resume grid trading (409 when halted)",
                _json_response("Started or already running", "StartResult"),
                command_errors,
                a,
                body="EmptyRequest",
                body_required=False,
            )
        },
        "/stop": {
            "post": _operation(
                "/stop",
                "Pause grid trading: cancel grid orders, keep exits",
                _json_response("Stopped or already stopped", "StopResult"),
                command_errors,
                a,
                body="EmptyRequest",
                body_required=False,
            )
        },
        "/flatten": {
            "post": _operation(
                "/flatten",
                "Cancel orders and close positions on one or both sides",
                _json_response("Flattening", "FlattenResult"),
                command_errors,
                a,
                body="FlattenRequest",
            )
        },
        "/set-throttle": {
            "post": _operation(
                "/set-throttle",
                "Set grid aggressiveness 0.0 (passive) .. 1.0 (aggressive)",
                _json_response("Updated or unchanged", "ThrottleResult"),
                command_errors,
                a,
                body="ThrottleRequest",
            )
        },
        "/metrics": {
            "get": _operation(
                "/metrics",
                "Prometheus metrics (text exposition format 0.0.4)",
                _text("Metrics", {"text/plain": {"schema": {"type": "string"}}}),
                (),
                a,
            )
        },
        "/openapi.json": {
            "get": _operation(
                "/openapi.json",
                "This document",
                _text("OpenAPI 3.1 document", {JSON: {"schema": {"type": "object"}}}),
                (),
                a,
            )
        },
        "/docs": {
            "get": _operation(
                "/docs",
                "Swagger UI (served from the installed package, no CDN)",
                _text("HTML page", {"text/html": {"schema": {"type": "string"}}}),
                (503,),
                a,
            )
        },
        "/docs/static/{filename}": {
            "get": {
                **_operation(
                    "/docs/static/{filename}",
                    "Swagger UI asset",
                    _text(
                        "Asset",
                        {
                            "text/css": {"schema": {"type": "string"}},
                            "application/javascript": {"schema": {"type": "string"}},
                            "image/png": {"schema": {"type": "string", "format": "binary"}},
                        },
                    ),
                    (404, 503),
                    a,
                ),
                "parameters": [
                    {
                        "name": "filename",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
            }
        },
    }
    paths.update(_page_paths(a))
    components: dict[str, Any] = {
        "schemas": _schemas(),
        "headers": {
            "RequestId": {
                "description": "Echoes a sane client X-Request-ID, otherwise a new id; "
                "quoted in logs.",
                "schema": {"type": "string"},
            }
        },
    }
    if auth_enabled:
        components["securitySchemes"] = {
            "ApiKeyAuth": {"type": "apiKey", "in": "header", "name": API_KEY_HEADER}
        }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "hedgegrid_ops control API",
            "version": hedgegrid_ops.__version__,
            "description": (
                "Status and control of the hedge-mode grid strategy. Every error is JSON "
                '{"error", "detail", "request_id"}. Any unknown path answers 404 not_found '
                "and a known path with the wrong method answers 405 method_not_allowed "
                "(with an Allow header). Every response carries X-Request-ID."
            ),
        },
        "paths": paths,
        "components": components,
    }

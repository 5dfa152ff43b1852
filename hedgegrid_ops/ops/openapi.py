"""The OpenAPI 3.1 description of the control API, generated from the wire Structs.

Components come from ``msgspec.json.schema_components`` over the Structs in
``hedgegrid_ops.api``; every object schema is closed (``additionalProperties:
false``), so a response field that is not declared there fails the schema tests.
The JSON paths come from the route table in ``api.py``; only the non-JSON routes
(metrics, this document, Swagger UI) are written out here. Error responses name the
codes of their own status, with an example Swagger UI can show. The security
section follows the configured key, so ``/openapi.json`` describes this server as
it is running.
"""

from __future__ import annotations

from typing import Any

import msgspec

import hedgegrid_ops
from hedgegrid_ops.api import (
    COMMAND_ROUTES,
    ERROR_CODES,
    MAX_BODY_BYTES,
    READ_ROUTES,
    CommandRoute,
    Error,
    ReadRoute,
)
from hedgegrid_ops.ops.auth import API_KEY_HEADER, OPEN_ROUTES

JSON = "application/json"
Schema = dict[str, Any]
REF_TEMPLATE = "#/components/schemas/{name}"

_STATUS_TEXT = {
    200: "OK",
    400: "Invalid request: the body, or the HTTP request itself",
    401: "Missing or wrong API key",
    403: "Cross-origin request from a foreign Origin",
    404: "Not found",
    408: "The body did not arrive within the body timeout",
    409: "Not allowed in the current trading state",
    413: f"Body over {MAX_BODY_BYTES} bytes",
    415: "The body is not application/json",
    421: "The Host header names a host this server does not serve (DNS rebinding guard)",
    426: "Not a WebSocket upgrade request",
    429: "Over the client's budget of commands or wrong keys; see Retry-After",
    500: "Internal error (details are in the server log under the request id)",
    503: "No strategy state, no strategy attached, or too many requests in flight",
    504: "The strategy did not answer within the command timeout",
}


def _ref(name: str) -> Schema:
    return {"$ref": REF_TEMPLATE.format(name=name)}


def _close(schema: Any) -> None:
    """Forbid undeclared properties on every object schema, recursively."""
    if isinstance(schema, dict):
        if schema.get("type") == "object" and "properties" in schema:
            schema["additionalProperties"] = False
        for value in schema.values():
            _close(value)
    elif isinstance(schema, list):
        for item in schema:
            _close(item)


def wire_structs() -> list[type[msgspec.Struct]]:
    """Every Struct that crosses the wire, in the order the document lists them."""
    kinds: list[type[msgspec.Struct]] = [Error]
    kinds += [r.response for r in READ_ROUTES]
    for c in COMMAND_ROUTES:
        kinds += [c.request, c.result]
    return kinds


def schemas() -> dict[str, Schema]:
    _, components = msgspec.json.schema_components(wire_structs(), ref_template=REF_TEMPLATE)
    _close(components)
    return components


_REQUEST_ID_HEADER = {"X-Request-ID": {"$ref": "#/components/headers/RequestId"}}


def _json_response(description: str, schema_name: str) -> Schema:
    return {
        "description": description,
        "headers": _REQUEST_ID_HEADER,
        "content": {JSON: {"schema": _ref(schema_name)}},
    }


def _error(status: int) -> Schema:
    """An error answer whose schema and example name only the codes of ``status``."""
    codes = list(ERROR_CODES[status])
    example = {"error": codes[0], "detail": _STATUS_TEXT[status], "request_id": "3f2a9c"}
    return {
        "description": f"{_STATUS_TEXT[status]} (error: {', '.join(codes)})",
        "headers": _REQUEST_ID_HEADER,
        "content": {
            JSON: {
                "schema": {"allOf": [_ref("Error"), {"properties": {"error": {"enum": codes}}}]},
                "example": example,
            }
        },
    }


# What the control plane's guards can answer on any route (docs/hardening.md): 400 for a
# request the HTTP parser rejects, 421 for a Host that is not served here, 500 for the
# unexpected; on routes outside the probe lane, 503 when too many requests are in flight.
GUARD_STATUSES = (400, 421, 500)
LANE_ROUTES = frozenset({"/health", "/metrics"})
# On commands: a foreign Origin, a body that stalls, a body that is not JSON, a client
# over its command budget.
COMMAND_GUARD_STATUSES = (403, 408, 415, 429)


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
    statuses = sorted(
        {
            *errors,
            *GUARD_STATUSES,
            *((401, 429) if protected else ()),
            *(() if path in LANE_ROUTES else (503,)),
            *(COMMAND_GUARD_STATUSES if body is not None else ()),
        }
    )
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


def query_parameters(query: type[msgspec.Struct]) -> list[Schema]:
    """OpenAPI ``in: query`` parameters from the Struct a query string decodes into.

    A parameter is optional on the wire; ``null`` (the Struct's "not given") is not
    something a query string can say, so it is dropped from the schema.
    """
    _, components = msgspec.json.schema_components([query], ref_template=REF_TEMPLATE)
    props = components[query.__name__]["properties"]
    params: list[Schema] = []
    for name, schema in props.items():
        options = [s for s in schema.get("anyOf", [schema]) if s.get("type") != "null"]
        param_schema = dict(options[0]) if len(options) == 1 else schema
        if "default" in schema and schema["default"] is not None:
            param_schema["default"] = schema["default"]
        description = param_schema.pop("description", None) or schema.get("description")
        param: Schema = {"name": name, "in": "query", "required": False, "schema": param_schema}
        if description:
            param["description"] = description
        params.append(param)
    return params


def _read(route: ReadRoute, auth_enabled: bool) -> Schema:
    name = route.response.__name__
    op = _operation(
        route.path, route.summary, _json_response(name, name), route.errors, auth_enabled
    )
    if route.query is not None:
        op["parameters"] = query_parameters(route.query)
    for status, meaning in route.also:
        op["responses"][str(status)] = _json_response(meaning, name)
    op["responses"] = dict(sorted(op["responses"].items()))
    return op


COMMAND_ERRORS = (400, 409, 413, 503, 504)


def _command(route: CommandRoute, auth_enabled: bool) -> Schema:
    return _operation(
        route.path,
        route.summary,
        _json_response(route.ok, route.result.__name__),
        COMMAND_ERRORS,
        auth_enabled,
        body=route.request.__name__,
        body_required=route.body_required,
    )


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
    events_op = _operation("/events", "Live event stream (WebSocket)", html, (403, 426), a)
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


def _other_paths(a: bool) -> dict[str, Any]:
    """The routes that do not answer JSON Structs: written out by hand."""
    return {
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


def build_openapi(auth_enabled: bool) -> dict[str, Any]:
    """The document for a server with (``auth_enabled``) or without an API key."""
    paths: dict[str, Any] = {r.path: {"get": _read(r, auth_enabled)} for r in READ_ROUTES}
    paths.update({c.path: {"post": _command(c, auth_enabled)} for c in COMMAND_ROUTES})
    paths.update(_other_paths(auth_enabled))
    paths.update(_page_paths(auth_enabled))
    components: dict[str, Any] = {
        "schemas": schemas(),
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

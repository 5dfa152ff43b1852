"""The API's error vocabulary: one JSON shape for every failure.

Clients (the CLI, scripts, dashboards) branch on the stable ``error`` code, people
read ``detail``, and ``request_id`` ties the answer to the access and audit logs.
Nothing here ever carries a stack trace or a secret.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

# Every code the server can answer with, by HTTP status (the OpenAPI document lists these).
ERROR_CODES: dict[int, tuple[str, ...]] = {
    400: (
        "invalid_json",
        "invalid_type",
        "out_of_range",
        "invalid_side",
        "missing_field",
        "unknown_field",
    ),
    401: ("unauthorized",),
    404: ("not_found",),
    405: ("method_not_allowed",),
    409: ("conflict",),
    413: ("payload_too_large",),
    426: ("upgrade_required",),
    500: ("internal_error",),
    503: ("unavailable",),
    504: ("timeout",),
}


class ApiError(Exception):
    """A failure the handler can name: becomes ``{"error", "detail", "request_id"}``."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        if code not in ERROR_CODES.get(status, ()):
            raise ValueError(f"error code {code!r} is not declared for HTTP {status}")
        self.status = status
        self.code = code
        self.detail = detail


def json_response(
    body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """orjson-encoded response: fast, and NaN/inf become ``null`` instead of invalid JSON."""
    return web.Response(
        body=orjson.dumps(body),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def error_response(
    status: int,
    code: str,
    detail: str,
    request_id: str,
    headers: dict[str, str] | None = None,
) -> web.Response:
    return json_response(
        {"error": code, "detail": detail, "request_id": request_id}, status, headers
    )

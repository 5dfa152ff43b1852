"""Error responses: one JSON shape (``api.Error``) for every failure.

Clients (the CLI, scripts, dashboards) branch on the stable ``error`` code, people
read ``detail``, and ``request_id`` ties the answer to the access and audit logs.
Nothing here ever carries a stack trace or a secret.
"""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

from hedgegrid_ops.api import ERROR_CODES, Error


class ApiError(Exception):
    """A failure the handler can name: becomes ``{"error", "detail", "request_id"}``."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        headers: dict[str, str] | None = None,
        close: bool = False,
    ) -> None:
        super().__init__(detail)
        if code not in ERROR_CODES.get(status, ()):
            raise ValueError(f"error code {code!r} is not declared for HTTP {status}")
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers
        self.close = close  # the connection cannot be trusted for another request


def json_response(
    body: msgspec.Struct | dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """msgspec-encoded response (a wire Struct or plain JSON data); NaN/inf become ``null``."""
    return web.Response(
        body=msgspec.json.encode(body),
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
    return json_response(Error(error=code, detail=detail, request_id=request_id), status, headers)

"""API-key check for the control API.

Open without a key: ``/health`` (probes and load balancers), ``/metrics``
(Prometheus scrapes; it carries account figures — balance, equity, PnL, positions —
so ``--metrics-require-key`` puts it behind the key too), ``/docs``, its assets and
``/openapi.json`` (the API's shape is not a secret), the operator page (``/``, ``/ui``
and its assets: the key is typed into the page, not shipped with it) and ``/events``,
which checks the key itself because a browser cannot send a header on a WebSocket.
Everything else needs the key when one is configured, as ``X-API-Key: KEY`` or
``Authorization: Bearer KEY`` (what Prometheus's ``authorization`` scrape setting
sends). The comparison is constant-time so response timing does not leak how much of
a guess was right, and works on the raw bytes, so a header with undecodable bytes is
simply a wrong key, never an error.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

API_KEY_HEADER = "X-API-Key"
BEARER_PREFIX = "bearer "

OPEN_ROUTES = frozenset(
    {"/health", "/metrics", "/openapi.json", "/docs", "/docs/static/{filename}"}
    # /events checks the key itself (header or first message): a browser cannot set
    # headers on a WebSocket. The operator page and its assets hold no secret.
    | {"/events", "/", "/ui", "/ui/static/{filename}"}
)


def is_open_route(route: str) -> bool:
    """``route`` is the route template (``resource.canonical``), not the raw path."""
    return route in OPEN_ROUTES


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key the client sent: ``X-API-Key`` first, else an ``Authorization: Bearer`` token."""
    key = headers.get(API_KEY_HEADER)
    if key is not None:
        return key
    authorization = headers.get("Authorization")
    if authorization is not None and authorization[:7].lower() == BEARER_PREFIX:
        return authorization[7:].strip()
    return None


def _raw(text: str) -> bytes:
    # aiohttp decodes header bytes with surrogateescape; this gives the exact bytes back.
    return text.encode("utf-8", "surrogateescape")


def key_matches(configured: str, presented: str | None) -> bool:
    if presented is None:
        return False
    try:
        offered = _raw(presented)
    except UnicodeEncodeError:  # lone surrogates that were not produced by the parser
        return False
    return hmac.compare_digest(_raw(configured), offered)

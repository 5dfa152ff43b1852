"""API-key check for the control API.

Open without a key: ``/health`` (probes and load balancers), ``/metrics``
(Prometheus scrapes without credentials; the series hold no secrets), ``/docs``,
its assets and ``/openapi.json`` (the API's shape is not a secret), the operator page
(``/``, ``/ui`` and its assets: the key is typed into the page, not shipped with it) and
``/events``, which checks the key itself because a browser cannot send a header on a
WebSocket. Everything
else needs ``X-API-Key`` when a key is configured. The comparison is constant-time
so response timing does not leak how much of a guess was right.
"""

from __future__ import annotations

import hmac

API_KEY_HEADER = "X-API-Key"

OPEN_ROUTES = frozenset(
    {"/health", "/metrics", "/openapi.json", "/docs", "/docs/static/{filename}"}
    # /events checks the key itself (header or first message): a browser cannot set
    # headers on a WebSocket. The operator page and its assets hold no secret.
    | {"/events", "/", "/ui", "/ui/static/{filename}"}
)


def is_open_route(route: str) -> bool:
    """``route`` is the route template (``resource.canonical``), not the raw path."""
    return route in OPEN_ROUTES


def key_matches(configured: str, presented: str | None) -> bool:
    if presented is None:
        return False
    return hmac.compare_digest(configured.encode(), presented.encode())

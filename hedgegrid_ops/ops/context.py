"""Typed keys for what the handlers share: dependencies are passed in, never imported.

The app factory puts the store, the bus, the metrics and the settings on the
application under these keys, and the middlewares put per-request facts (request
id, whether the API key was presented) on the request, so handlers stay plain
functions of (request) that tests can drive against any wiring.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from hedgegrid_ops.history.store import FillHistory
from hedgegrid_ops.ops.bus import CommandBus
from hedgegrid_ops.ops.events import EventHub
from hedgegrid_ops.ops.metrics import OpsMetrics
from hedgegrid_ops.ops.notify import Notifier
from hedgegrid_ops.ops.settings import OpsSettings
from hedgegrid_ops.snapshot import SnapshotStore


@dataclass(frozen=True)
class OpsContext:
    """Everything a handler may use; one per service, shared by the API and metrics apps."""

    settings: OpsSettings
    store: SnapshotStore
    bus: CommandBus
    metrics: OpsMetrics
    node_running: Callable[[], bool]
    # Live mode: why the venue is unusable right now (connection down, data stale), or None.
    venue_problem: Callable[[], str | None] | None = None
    swagger_dir: Path | None = None  # None: the Swagger UI package is not installed
    events: EventHub | None = None  # None: GET /events closes at once (no hub wired)
    history: FillHistory | None = None  # None: /fills and /pnl/daily answer 503
    notifier: Notifier | None = None  # None: no webhook configured
    started_monotonic: float = field(default_factory=time.monotonic)
    # Read views encoded once per snapshot: view name -> (snapshot, JSON body).
    encoded_views: dict[str, tuple[object, bytes]] = field(default_factory=dict)

    def current_venue_problem(self) -> str | None:
        """The venue probe's answer now; a probe that raises counts as a problem."""
        if self.venue_problem is None:
            return None
        try:
            return self.venue_problem()
        except Exception:  # a broken probe means we cannot vouch for the venue
            return "the venue connection check failed"


CONTEXT = web.AppKey("hedgegrid_ops_context", OpsContext)
REQUEST_ID = web.RequestKey("hedgegrid_request_id", str)
KEY_USED = web.RequestKey("hedgegrid_key_used", bool)

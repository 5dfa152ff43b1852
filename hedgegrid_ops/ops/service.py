"""Lifecycle of the operations layer on the node's event loop.

``OpsService`` binds the API listener (and the Prometheus listener unless
disabled), subscribes the event hub (and the webhook notifier, when configured) to
the snapshot store, starts the command consumer and a loop-lag probe. Everything
runs on the loop it was started on; nothing here blocks it. ``start`` fails with one
readable sentence (``OpsStartError``) so the runner can print it and exit instead of
a traceback.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from hedgegrid_ops.history.store import FillHistory
from hedgegrid_ops.logs import get_logger
from hedgegrid_ops.ops.audit import add_audit_listener, command_audit_sink, remove_audit_listener
from hedgegrid_ops.ops.bus import CommandBus
from hedgegrid_ops.ops.context import OpsContext
from hedgegrid_ops.ops.events import EventHub, EventType, StreamSettings
from hedgegrid_ops.ops.guard import GuardedAppRunner, connection_cap, listen_backlog
from hedgegrid_ops.ops.metrics import OpsMetrics
from hedgegrid_ops.ops.notify import Notifier
from hedgegrid_ops.ops.server import build_api_app, build_metrics_app
from hedgegrid_ops.ops.settings import OpsSettings
from hedgegrid_ops.ops.stream import health_data, snapshot_data
from hedgegrid_ops.ops.taps import MessageBus, tap_message_bus
from hedgegrid_ops.snapshot import SnapshotStore

_log = get_logger("ops")


class OpsStartError(Exception):
    """The ops servers could not start; the message is one sentence for the operator."""


def swagger_assets_dir() -> Path | None:
    """Where the installed Swagger UI files are, or None when the package is missing."""
    try:
        import swagger_ui_bundle
    except ImportError:
        return None
    path = Path(str(swagger_ui_bundle.swagger_ui_path))
    return path if (path / "swagger-ui-bundle.js").is_file() else None


def _url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def _listen_error(host: str, port: int, exc: OSError) -> OpsStartError:
    if exc.errno == errno.EADDRINUSE:
        why = "address already in use"
    elif exc.errno == errno.EACCES:
        why = "permission denied"
    elif exc.errno == errno.EADDRNOTAVAIL:
        why = "address not available on this machine"
    else:
        why = (exc.strerror or str(exc)).lower()
    return OpsStartError(f"cannot listen on {host}:{port}: {why}")


class OpsService:
    """The API and metrics listeners plus their background tasks, started and stopped as one."""

    def __init__(
        self,
        settings: OpsSettings,
        store: SnapshotStore,
        node_running: Callable[[], bool],
        stream: StreamSettings | None = None,
        venue_problem: Callable[[], str | None] | None = None,
        history: FillHistory | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        # The one command bus of the process: built here, attached to the strategy by the
        # runner (``service.bus.attach``), started and closed by the API app's lifecycle.
        self.bus = CommandBus(timeout=settings.command_timeout, audit=command_audit_sink)
        self.metrics = OpsMetrics(settings.instrument_id)
        self.events = EventHub(
            snapshot_data,
            lambda: health_data(self._ctx),
            settings=stream,
            on_clients=self.metrics.set_stream_clients,
            on_drop=self.metrics.stream_client_dropped,
        )
        self.notifier = (
            Notifier(settings.notify, settings.instrument_id, self.metrics)
            if settings.notify is not None
            else None
        )
        self._ctx = OpsContext(
            settings=settings,
            store=store,
            bus=self.bus,
            metrics=self.metrics,
            node_running=node_running,
            venue_problem=venue_problem,
            swagger_dir=swagger_assets_dir(),
            events=self.events,
            history=history,
            notifier=self.notifier,
        )
        self._runners: list[GuardedAppRunner] = []
        self._api_port: int | None = None
        self._metrics_port: int | None = None
        self._subscribed = False
        self._started = False
        self._cap = settings.max_connections  # per listener, fitted to ulimit -n at start

    async def start(self) -> None:
        if self._started:
            return
        s = self.settings
        listeners = 1 if s.prometheus_port == 0 else 2
        self._cap = connection_cap(s.max_connections, listeners)
        if self._cap < s.max_connections:
            _log.warning(
                "connection_cap_reduced",
                wanted=s.max_connections,
                cap=self._cap,
                detail="the open-file limit (ulimit -n) is too low for the connection cap",
            )
        try:
            self._api_port = await self._listen(build_api_app(self._ctx), s.api_port)
            if s.prometheus_port != 0:
                self._metrics_port = await self._listen(
                    build_metrics_app(self._ctx), s.prometheus_port
                )
        except BaseException:
            await self._cleanup_runners()
            raise
        self.events.start()
        if not self._subscribed:
            self.store.subscribe(self.events.on_snapshot)
            if self.notifier is not None:
                self.store.subscribe(self.notifier.on_snapshot)
            self._subscribed = True
        add_audit_listener(self._audit_to_stream)
        if self.notifier is not None:
            add_audit_listener(self.notifier.on_audit)
        self._started = True
        api = self.api_url
        _log.info(
            "ops_listening",
            api=api,
            metrics=self.metrics_url,
            health=f"{api}/health",
            docs=f"{api}/docs" if self._ctx.swagger_dir is not None else None,
            auth="X-API-Key required" if s.auth_enabled else "open (no API key set)",
        )

    def tap(self, msgbus: MessageBus, strategy_id: str) -> None:
        """Stream the strategy's order events and ``hedgegrid.stream.*`` messages too."""
        tap_message_bus(msgbus, strategy_id, self.events)

    def _audit_to_stream(self, record: dict) -> None:
        self.events.publish(EventType.AUDIT, record)

    async def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        remove_audit_listener(self._audit_to_stream)
        if self.notifier is not None:
            remove_audit_listener(self.notifier.on_audit)
        self.events.close()
        await self._cleanup_runners()  # the API app's cleanup closes the bus and the probe
        _log.info("ops_stopped")

    @property
    def context(self) -> OpsContext:
        """What the apps' handlers share (for building an app without the listeners)."""
        return self._ctx

    @property
    def api_port(self) -> int:
        if self._api_port is None:
            raise RuntimeError("the ops service is not started")
        return self._api_port

    @property
    def metrics_port(self) -> int:
        """The port that serves /metrics (the API port when the Prometheus listener is off)."""
        return self._metrics_port if self._metrics_port is not None else self.api_port

    @property
    def api_url(self) -> str:
        """Base URL of the control API, with the port actually bound."""
        return _url(self.settings.host, self.api_port)

    @property
    def metrics_url(self) -> str:
        """Full scrape URL (``.../metrics``) with the port actually bound."""
        return f"{_url(self.settings.host, self.metrics_port)}/metrics"

    async def _listen(self, app: web.Application, port: int) -> int:
        host = self.settings.host
        runner = GuardedAppRunner(
            app,
            self.settings,
            on_evict=self.metrics.evicted_connection,
            max_connections=self._cap,
        )
        await runner.setup()
        self._runners.append(runner)
        site = web.TCPSite(runner, host, port, backlog=listen_backlog(self._cap))
        try:
            await site.start()
        except OSError as exc:
            raise _listen_error(host, port, exc) from exc
        return int(runner.addresses[-1][1])

    async def _cleanup_runners(self) -> None:
        runners, self._runners = self._runners, []
        for runner in reversed(runners):
            await runner.cleanup()
        self._api_port = None
        self._metrics_port = None

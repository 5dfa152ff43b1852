"""Post kill-switch trips, flattens and halts to a webhook (Slack- and Discord-compatible).

Alertmanager already turns the metrics into alerts (``configs/alertmanager/``); this is
the short path for a single instance without that stack: the program itself tells a
chat channel what the kill switch, a flatten or a halt just did, within a second.

Delivery must never cost trading anything, so:

- ``on_snapshot`` (a ``SnapshotStore`` listener, on the strategy's call path) only
  compares the snapshot with the previous one (``ops/notices.py``), ``on_audit`` (an
  audit-trail listener) only looks at one record, and when there is something to say
  either appends it to a bounded queue; neither awaits;
- one worker task posts the queue in order with its own ``aiohttp.ClientSession``,
  each POST bounded by ``timeout``; connection errors, timeouts, 429 and 5xx answers
  are retried ``retries`` times with a doubling backoff (or the receiver's
  ``Retry-After``, capped), other answers are not;
- when the receiver is slower than the events, the oldest waiting message is dropped
  (the newest says most about the present) and counted;
- every outcome is counted (``hedgegrid_notifications_*_total``) and logged with the
  receiver's scheme and host only: the URL's path or query carries its secret.

The worker starts and stops with the API app (``ops/lifecycle.py``); at shutdown it
gets a short grace to deliver what is queued (a halt on stopping), then what is left
is counted as dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import Any

import aiohttp

from hedgegrid_ops import __version__
from hedgegrid_ops.logs import get_logger
from hedgegrid_ops.ops.metrics import OpsMetrics
from hedgegrid_ops.ops.notices import Notice, NoticeDeriver, render
from hedgegrid_ops.ops.settings import NotifySettings
from hedgegrid_ops.snapshot import StrategySnapshot

_log = get_logger("notify")

SHUTDOWN_GRACE = 0.5  # seconds the queue may still be delivered when the service stops
MAX_RETRY_AFTER = 10.0  # seconds: a receiver's Retry-After is honoured up to this


def _retry_after(value: str | None) -> float | None:
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    if seconds is None or not seconds >= 0:
        return None
    return min(seconds, MAX_RETRY_AFTER)


class Notifier:
    """Derives notices from snapshots and posts them, one worker, bounded queue."""

    def __init__(self, settings: NotifySettings, instrument_id: str, metrics: OpsMetrics) -> None:
        self.settings = settings
        self._metrics = metrics
        self._derive = NoticeDeriver(f"hedgegrid {settings.name} {instrument_id}")
        self._queue: deque[Notice] = deque()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._session: aiohttp.ClientSession | None = None
        self._worker: asyncio.Task[None] | None = None
        self._closed = False

    # ---- the strategy's side: cheap, never awaits, never raises --------------------

    def on_snapshot(self, snap: StrategySnapshot) -> None:
        """``SnapshotStore`` listener: queue what ``snap`` calls for."""
        for notice in self._derive.observe(snap):
            self.submit(notice)

    def on_audit(self, record: dict[str, Any]) -> None:
        """Audit-trail listener: queue the notice for an operator's flatten."""
        notice = self._derive.on_audit(record)
        if notice is not None:
            self.submit(notice)

    def submit(self, notice: Notice) -> None:
        """Queue ``notice``; when ``queue_size`` already wait, the oldest is dropped."""
        if self._closed:
            self._dropped(notice, "shutdown")
            return
        if len(self._queue) >= self.settings.queue_size:
            self._dropped(self._queue.popleft(), "queue_full")
        self._queue.append(notice)
        self._idle.clear()
        self._wake.set()

    # ---- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        """Open the HTTP session and start the worker (on the running loop)."""
        if self._worker is not None:
            return
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.settings.timeout),
            headers={"User-Agent": f"hedgegrid_ops/{__version__}"},
        )
        self._worker = asyncio.get_running_loop().create_task(self._run(), name="webhook-notifier")
        _log.info("notify_enabled", target=self.settings.target, name=self.settings.name)

    async def close(self, grace: float = SHUTDOWN_GRACE) -> None:
        """Give the queue ``grace`` seconds, then stop; what is left counts as dropped."""
        self._closed = True
        if self._worker is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), grace)
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        while self._queue:
            self._dropped(self._queue.popleft(), "shutdown")
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def waiting(self) -> int:
        """Messages queued, not yet being posted."""
        return len(self._queue)

    @property
    def settled(self) -> bool:
        """Nothing queued and nothing being posted (or retried) right now."""
        return self._idle.is_set()

    # ---- the worker ----------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                notice = self._queue.popleft()
                try:
                    await self._deliver(notice)
                except asyncio.CancelledError:
                    self._dropped(notice, "shutdown")
                    raise
                except Exception as exc:  # never let one message stop the worker
                    self._failed(notice, "error", 0, error=type(exc).__name__)
            self._idle.set()

    async def _deliver(self, notice: Notice) -> None:
        body = render(notice)
        attempts = self.settings.retries + 1
        for attempt in range(1, attempts + 1):
            reason, status, wait, error = await self._post(body)
            if reason is None:
                self._metrics.notification_delivered(notice.kind.value)
                _log.info(
                    "notification_sent",
                    kind=notice.kind.value,
                    target=self.settings.target,
                    status=status,
                    attempts=attempt,
                )
                return
            if wait is None or attempt == attempts:  # not worth retrying, or no tries left
                self._failed(notice, reason, attempt, status=status, error=error)
                return
            await asyncio.sleep(wait if wait > 0 else self.settings.backoff * 2 ** (attempt - 1))

    async def _post(self, body: bytes) -> tuple[str | None, int | None, float | None, str | None]:
        """One POST: (failure reason or None, status, retry delay or None, error name).

        A delay of 0 means "retry after the usual backoff"; None means "do not retry".
        """
        assert self._session is not None
        try:
            async with self._session.post(
                self.settings.url, data=body, headers={"Content-Type": "application/json"}
            ) as resp:
                status = resp.status
                retry_after = _retry_after(resp.headers.get("Retry-After"))
                resp.release()
        except TimeoutError:
            return "timeout", None, 0.0, "TimeoutError"
        except aiohttp.ClientError as exc:
            return "connection", None, 0.0, type(exc).__name__
        if 200 <= status < 300:
            return None, status, None, None
        retryable = status == 429 or status >= 500
        return "http_status", status, (retry_after or 0.0) if retryable else None, None

    def _failed(
        self,
        notice: Notice,
        reason: str,
        attempts: int,
        status: int | None = None,
        error: str | None = None,
    ) -> None:
        self._metrics.notification_failed(reason)
        _log.warning(
            "notification_failed",
            kind=notice.kind.value,
            target=self.settings.target,
            reason=reason,
            status=status,
            error=error,
            attempts=attempts,
        )

    def _dropped(self, notice: Notice, reason: str) -> None:
        self._metrics.notification_dropped(reason)
        _log.warning(
            "notification_dropped",
            kind=notice.kind.value,
            target=self.settings.target,
            reason=reason,
        )

"""The live event hub behind ``GET /events``: one producer side, many bounded clients.

Why it is shaped this way:

- The strategy's call path must stay cheap. ``publish`` only appends to a list and, if
  no flush is pending, schedules one ``_flush`` ``flush_interval`` (20 ms) later;
  encoding and fan-out happen in that callback, after the strategy has returned, for
  everything published meanwhile. Nothing here ever awaits a client.
- The fan-out costs one write per client per flush, whatever the number of messages or
  clients: each message is encoded and framed once (``ops/wsframe.py``), the frames of
  one flush are joined, and the same bytes go to every client's socket in one write
  from that callback. No per-client task wakes up, nothing is copied per client.
- Snapshots are coalesced. The store tells the hub about every snapshot (after every
  bar and order event), but the hub encodes and sends at most one per
  ``snapshot_interval`` for all clients together.
- Each client is bounded: a batch that does not reach the kernel at once waits in the
  connection's transport, and when more than ``buffer`` messages wait there the client
  is dropped with a reason (its connection is closed with ``CLOSE_SLOW_CONSUMER``),
  never buffered without bound, so a stalled browser cannot grow memory or slow anyone
  else.
- Every message carries a hub-wide ``seq``; a client sees strictly increasing values
  (gaps mean messages it was not connected for).

Trading-state, throttle and flatten-progress events are derived here by comparing
consecutive snapshots, which the store delivers in order on the loop; order and fill
events come from Nautilus's message bus (``ops/taps.py``), audit entries from the audit
trail. Other components publish their own types (``kill_switch``) through ``publish``
or the message-bus topic prefix documented in ``ops/taps.py``.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

import msgspec
import orjson

from hedgegrid_ops.ops.wsframe import text_frames
from hedgegrid_ops.snapshot import StrategySnapshot, TradingState

# WebSocket close codes the stream uses (4000-4999 are the application's own range).
CLOSE_GOING_AWAY = 1001  # the service is shutting down
CLOSE_TRY_AGAIN_LATER = 1013  # too many clients: the cap is reached
CLOSE_BAD_MESSAGE = 4400  # the client sent something the protocol does not allow
CLOSE_UNAUTHORIZED = 4401  # no valid API key (header or first message)
CLOSE_SLOW_CONSUMER = 4408  # the client fell too far behind and was dropped


class EventType(StrEnum):
    """The ``type`` of every message on the stream (documented in docs/operations.md)."""

    SNAPSHOT = "snapshot"  # {status, ladders, orders}: the same shapes as the GET routes
    HEARTBEAT = "heartbeat"  # {health}: sent every heartbeat_interval while connected
    FILL = "fill"  # one fill of one of our orders
    ORDER = "order"  # {event: accepted|cancelled|rejected|denied|expired, ...}
    TRADING_STATE = "trading_state"  # {previous, state, reason}
    THROTTLE = "throttle"  # {previous, throttle}
    FLATTEN = "flatten"  # {phase: started|progress|done, long_qty, short_qty, ...}
    KILL_SWITCH = "kill_switch"  # a breaker tripped: {breaker, reason, tripped_at, trips}
    AUDIT = "audit"  # one control action as the audit log records it


@dataclass(frozen=True)
class StreamSettings:
    """Limits of the event stream. Defaults suit a handful of operators and scripts."""

    max_clients: int = 64
    buffer: int = 256  # messages waiting to be sent to a client before it counts as stalled
    snapshot_interval: float = 0.25  # at most 4 snapshot messages per second
    # Events are fanned out in batches at most this often: each fan-out is one write per
    # client, so batching keeps the writes per second independent of how many events a
    # bar produces (an event waits at most this long).
    flush_interval: float = 0.02
    heartbeat_interval: float = 2.0
    auth_timeout: float = 5.0  # seconds a browser has to send its key

    def __post_init__(self) -> None:
        if self.max_clients < 1 or self.buffer < 1:
            raise ValueError("max_clients and buffer must be at least 1")
        for name in ("snapshot_interval", "heartbeat_interval", "auth_timeout", "flush_interval"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be a positive number of seconds")


class StreamFull(Exception):
    """The client cap is reached; the message is the close reason."""


def encode(message: dict[str, Any]) -> bytes:
    """JSON bytes; msgspec Structs (the wire shapes) are encoded via their builtins."""
    return orjson.dumps(message, default=msgspec.to_builtins)


class FrameSink(Protocol):
    """Where a client's frames go: its connection's transport, seen from the hub."""

    def write(self, data: bytes) -> None:
        """Hand ``data`` to the connection; never blocks (what the kernel does not take
        at once waits in the transport)."""

    def unsent(self) -> int:
        """Bytes written but not yet taken by the kernel."""

    def gone(self) -> bool:
        """True once the connection is closing: nothing more may be written."""


class Subscriber:
    """One connected client: where its frames go, how far behind it is and, once dropped,
    why.

    ``limit`` bounds the messages that may wait in the transport (written, not yet taken
    by the kernel). The count is kept per batch: the end offset of every batch that did
    not go out at once, forgotten as the transport drains; a client that keeps up never
    has any, so the bookkeeping costs it nothing.
    """

    def __init__(self, ident: int, sink: FrameSink, limit: int) -> None:
        self.id = ident
        self._sink = sink
        self._limit = limit
        self._written = 0  # bytes this hub wrote to the client
        self._backlog: deque[tuple[int, int]] = deque()  # (end offset, messages) per batch
        self.waiting = 0  # messages in the backlog
        self.dropped: asyncio.Event = asyncio.Event()
        self.drop_reason: str | None = None
        self.drop_code = CLOSE_SLOW_CONSUMER

    def deliver(self, frames: bytes, count: int) -> bool:
        """Write ``count`` messages' frames; False when more than ``limit`` now wait."""
        sink = self._sink
        if sink.gone():  # closing: its handler unsubscribes it
            return True
        sink.write(frames)
        self._written += len(frames)
        unsent = sink.unsent()
        backlog = self._backlog
        if not unsent:
            if backlog:
                backlog.clear()
                self.waiting = 0
            return True
        backlog.append((self._written, count))
        self.waiting += count
        sent = self._written - unsent
        while backlog[0][0] <= sent:  # never empties: the last batch is not all sent
            self.waiting -= backlog.popleft()[1]
        return self.waiting <= self._limit


SnapshotRenderer = Callable[[StrategySnapshot], Any]
# Builds one message (type, data) from an object published as it is, or None to skip it.
MessageRenderer = Callable[[Any], tuple[str, Any] | None]
HealthRenderer = Callable[[], Any]


def _new_trip(prev: StrategySnapshot | None, snap: StrategySnapshot) -> dict | None:
    """The kill-switch event for a trip that happened since ``prev``, if one did.

    Derived from the snapshots like the state events, so a trip is streamed whatever
    breaker caused it; a trip restored from the state directory at start-up is not
    news (there is no previous snapshot to compare with)."""
    ks = snap.kill_switch
    if prev is None or not ks.tripped or ks.tripped_at == prev.kill_switch.tripped_at:
        return None
    return {
        "breaker": ks.breaker,
        "reason": ks.reason,
        "tripped_at": ks.tripped_at,
        "trips": dict(ks.trips),
    }


def _flatten_progress(prev: StrategySnapshot | None, snap: StrategySnapshot) -> dict | None:
    """A flatten event for this snapshot, or None when nothing about a flatten changed."""
    was = prev is not None and prev.trading_state is TradingState.FLATTENING
    now = snap.trading_state is TradingState.FLATTENING
    if not was and not now:
        return None
    legs = {"long_qty": snap.long.quantity, "short_qty": snap.short.quantity}
    if now and not was:
        phase = "started"
    elif was and not now:
        phase = "done"
    elif prev is not None and (prev.long.quantity, prev.short.quantity) != (
        snap.long.quantity,
        snap.short.quantity,
    ):
        phase = "progress"
    else:
        return None
    closing = sum(1 for o in snap.orders if o.role == "flatten")
    return {
        "phase": phase,
        **legs,
        "closing_orders": closing,
        "state": snap.trading_state.value,
        "reason": snap.state_reason,
    }


class EventHub:
    """Fans messages out to subscribers; lives on the event loop it was started on."""

    def __init__(
        self,
        render_snapshot: SnapshotRenderer,
        render_health: HealthRenderer | None = None,
        settings: StreamSettings | None = None,
        on_clients: Callable[[int], None] | None = None,
        on_drop: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings or StreamSettings()
        self._render_snapshot = render_snapshot
        self._render_health = render_health
        self._on_clients = on_clients
        self._on_drop = on_drop
        self._clock = clock
        self._subs: dict[int, Subscriber] = {}
        self._ids = itertools.count(1)
        self._seq = itertools.count(1)
        # (type, data, generation): the generation counts store publishes, so an event can be
        # placed before or after a given snapshot. A deferred event has type None and
        # (renderer, source) as data.
        self._pending: list[tuple[str | None, Any, int]] = []
        self._generation = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._flush_timer: asyncio.TimerHandle | None = None
        self._latest: StrategySnapshot | None = None
        self._prev: StrategySnapshot | None = None
        self._snapshot_dirty = False
        self._snapshot_timer: asyncio.TimerHandle | None = None
        self._last_snapshot_sent = 0.0  # loop time
        self._last_snapshot_msg: bytes | None = None
        self._heartbeat_timer: asyncio.TimerHandle | None = None
        self.sent_snapshots = 0  # how many snapshot messages were encoded (for tests/bench)

    # ---- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        """Bind to the running loop; until then (and after ``close``) publishing is a no-op."""
        self._loop = asyncio.get_running_loop()

    def close(self) -> None:
        """Stop timers and drop every client (their handlers close with CLOSE_GOING_AWAY)."""
        for timer in (self._snapshot_timer, self._heartbeat_timer, self._flush_timer):
            if timer is not None:
                timer.cancel()
        self._snapshot_timer = self._heartbeat_timer = self._flush_timer = None
        for sub in list(self._subs.values()):
            self._drop(sub, "the service is shutting down", CLOSE_GOING_AWAY)
        self._loop = None
        self._pending.clear()

    @property
    def clients(self) -> int:
        return len(self._subs)

    # ---- the producer side (strategy's call path: cheap, never awaits) -----------------

    def publish(self, kind: str, data: Any) -> None:
        """Queue one message for every client; encoded and sent after the caller returns."""
        self._queue(kind, data)

    def publish_deferred(self, render: MessageRenderer, source: Any) -> None:
        """Queue ``render(source)`` for every client, built at flush time.

        For publishers on the strategy's own call path (the message-bus tap sees every
        order event before the strategy handles it): even building the message's dict
        waits until the strategy has returned. ``source`` must not change afterwards
        (Nautilus events are immutable).
        """
        self._queue(None, (render, source))

    def _queue(self, kind: str | None, data: Any) -> None:
        if not self._subs or self._loop is None:
            return
        self._pending.append((kind, data, self._generation))
        if self._flush_timer is None:
            self._flush_timer = self._loop.call_later(self.settings.flush_interval, self._flush)

    def on_snapshot(self, snap: StrategySnapshot) -> None:
        """``SnapshotStore`` listener: derive state events, mark the snapshot for sending."""
        prev, self._prev = self._prev, snap
        self._latest = snap
        self._snapshot_dirty = True
        if not self._subs or self._loop is None:
            self._generation += 1
            return
        if prev is not None and prev.trading_state is not snap.trading_state:
            self.publish(
                EventType.TRADING_STATE,
                {
                    "previous": prev.trading_state.value,
                    "state": snap.trading_state.value,
                    "reason": snap.state_reason,
                },
            )
        if prev is not None and prev.throttle != snap.throttle:
            self.publish(EventType.THROTTLE, {"previous": prev.throttle, "throttle": snap.throttle})
        trip = _new_trip(prev, snap)
        if trip is not None:
            self.publish(EventType.KILL_SWITCH, trip)
        flatten = _flatten_progress(prev, snap)
        if flatten is not None:
            self.publish(EventType.FLATTEN, flatten)
        self._generation += 1  # what was published so far happened before this snapshot
        if self._snapshot_timer is None:
            due = self._last_snapshot_sent + self.settings.snapshot_interval
            delay = max(0.0, due - self._loop.time())
            self._snapshot_timer = self._loop.call_later(delay, self._send_snapshot)

    # ---- the consumer side -----------------------------------------------------------

    def subscribe(self, sink: FrameSink) -> Subscriber:
        """A new client writing to ``sink``, sent the latest snapshot and the health verdict.

        Raises ``StreamFull`` when the cap is reached.
        """
        if len(self._subs) >= self.settings.max_clients:
            raise StreamFull(
                f"too many event stream clients: the limit is {self.settings.max_clients}"
            )
        # Pending events from before the snapshot this client starts from go to the others
        # now, so the newcomer never sees an event its snapshot already counts; later ones
        # stay pending and reach the newcomer too.
        self._flush(before=self._generation)
        sub = Subscriber(next(self._ids), sink, self.settings.buffer)
        self._subs[sub.id] = sub
        priming: list[bytes] = []
        if self._latest is not None:
            if self._last_snapshot_msg is None or self._snapshot_dirty:
                self._last_snapshot_msg = self._message(
                    EventType.SNAPSHOT, self._render_snapshot(self._latest)
                )
                if self._snapshot_timer is None:  # no other client waits for this one
                    self._snapshot_dirty = False
            priming.append(self._last_snapshot_msg)
        if self._render_health is not None:  # so a new page shows health at once
            priming.append(self._message(EventType.HEARTBEAT, {"health": self._render_health()}))
        if priming:
            sub.deliver(text_frames(priming), len(priming))
        self._ensure_heartbeat()
        self._report_clients()
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        if self._subs.pop(sub.id, None) is not None:
            self._report_clients()

    # ---- internals -------------------------------------------------------------------

    def _message(self, kind: str, data: Any) -> bytes:
        return encode(
            {"type": str(kind), "seq": next(self._seq), "time": self._clock(), "data": data}
        )

    def _fan_out(self, messages: list[bytes]) -> None:
        """Frame ``messages`` once and write them to every client in one write each."""
        if not messages or not self._subs:
            return
        frames, count = text_frames(messages), len(messages)
        for sub in list(self._subs.values()):
            if not sub.deliver(frames, count):
                self._drop(
                    sub,
                    f"too slow: {self.settings.buffer} messages were waiting to be sent",
                    CLOSE_SLOW_CONSUMER,
                )

    def _due(self, before: int | None = None) -> list[bytes]:
        """Encode and take the pending events published before generation ``before``.

        By default that is everything, except while a snapshot waits to be sent: events
        newer than it then wait for it, so a client never gets an event before a
        snapshot that predates it (it would look undone).
        """
        if self._flush_timer is not None:
            self._flush_timer.cancel()  # a no-op when it is the timer calling
            self._flush_timer = None
        if before is None and self._snapshot_dirty and self._latest is not None:
            before = self._generation
        if before is None:
            due, self._pending = self._pending, []
        else:
            due = [p for p in self._pending if p[2] < before]
            self._pending = [p for p in self._pending if p[2] >= before]
        if self._pending and self._loop is not None:
            self._flush_timer = self._loop.call_later(self.settings.flush_interval, self._flush)
        messages = []
        for kind, data, _ in due:
            if kind is None:
                render, source = data
                made = render(source)
                if made is None:
                    continue
                kind, data = made
            messages.append(self._message(kind, data))
        return messages

    def _flush(self, before: int | None = None) -> None:
        """Send the pending events that are due (see ``_due``) as one batch."""
        self._fan_out(self._due(before))

    def _send_snapshot(self) -> None:
        self._snapshot_timer = None
        if self._loop is None or not self._snapshot_dirty or self._latest is None:
            return
        # Events published before this snapshot go out before it, in the same batch; later
        # ones (a fill the strategy has not published a snapshot for yet) wait for the
        # next flush.
        batch = self._due(before=self._generation)
        self._snapshot_dirty = False
        self._last_snapshot_sent = self._loop.time()
        self._last_snapshot_msg = self._message(
            EventType.SNAPSHOT, self._render_snapshot(self._latest)
        )
        self.sent_snapshots += 1
        batch.append(self._last_snapshot_msg)
        self._fan_out(batch)

    def _ensure_heartbeat(self) -> None:
        if self._heartbeat_timer is None and self._loop is not None:
            self._heartbeat_timer = self._loop.call_later(
                self.settings.heartbeat_interval, self._heartbeat
            )

    def _heartbeat(self) -> None:
        self._heartbeat_timer = None
        if not self._subs:
            return
        health = self._render_health() if self._render_health is not None else None
        batch = self._due()
        batch.append(self._message(EventType.HEARTBEAT, {"health": health}))
        self._fan_out(batch)
        self._ensure_heartbeat()

    def _drop(self, sub: Subscriber, reason: str, code: int) -> None:
        if self._subs.pop(sub.id, None) is None:
            return
        sub.drop_reason = reason
        sub.drop_code = code
        sub.dropped.set()
        if code == CLOSE_SLOW_CONSUMER and self._on_drop is not None:
            self._on_drop("slow_consumer")
        self._report_clients()

    def _report_clients(self) -> None:
        if self._on_clients is not None:
            self._on_clients(len(self._subs))

"""Structured JSON logging (structlog + orjson), one object per line, that never blocks.

Every line carries an ISO-8601 UTC ``timestamp``, ``level``, ``logger`` and
``event``. Lines are rendered on the caller's thread (cheap) and handed to their
sinks. Each sink — stdout and each file — has its own writer thread and its own
bounded queue, so no sink can hold up the event loop or another sink:

- a stdout nobody reads (a full pipe) blocks only the stdout thread; once its queue
  is full further stdout lines are dropped and counted, the files carry on;
- a failing file (full disk, removed directory, I/O error) is retried on the next
  line and reported by ``sink_problems()`` (``/health`` degraded) and the metrics;
- files rotate by size (``trading.log`` → ``trading.log.1`` …) keeping ``backups``
  old files, and ``reopen()`` (SIGHUP) reopens them for external rotation tools;
- a caller that must know a line reached the disk (the audit trail: an answer is
  not sent before its audit entry is written) collects a receipt with ``receipts()``.

Streams:
- ``trading``: stdout and ``logs/trading.log`` (strategy, node, audit copies)
- ``access``: ``logs/api_access.log`` (one line per HTTP request)
- ``audit``: ``logs/audit.log`` (fsynced, confirmed) and the trading stream
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
import datetime
import errno
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import orjson
import structlog
from structlog.typing import FilteringBoundLogger

TRADING = "trading"
ACCESS = "access"
AUDIT = "audit"
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

_STREAM_FILES = {TRADING: "trading.log", ACCESS: "api_access.log", AUDIT: "audit.log"}
STDOUT_QUEUE_LINES = 1_000  # a console more than this far behind is of no use
FILE_QUEUE_LINES = 100_000
DEFAULT_MAX_BYTES = 50 * 1024 * 1024
DEFAULT_BACKUPS = 5
_BATCH = 512  # lines written per system call at most


class LogSetupError(Exception):
    """The log directory or a log file cannot be used; the message is one line."""


@dataclass
class SinkStats:
    """What a sink has done, read by /health and /metrics (plain ints: no lock needed)."""

    name: str
    written: int = 0
    dropped: int = 0
    errors: int = 0
    rotations: int = 0
    failing: str | None = None  # last error while the sink is failing, else None


_Item = tuple[bytes, "Future[bool] | None"]
# A writer with nothing to do polls this often for this long before it goes to sleep on
# its event. While it polls, the loop's ``put`` is a bare ``deque.append``: no lock, no
# wake-up call. Every wake-up of a writer is a GIL hand-off the loop thread may have to
# wait for, so a busy stream is written in batches at most 100 times a second instead
# of once per line.
_LINGER_SECONDS = 0.01
_LINGER_ROUNDS = 10


class Sink:
    """One destination with its own thread and bounded buffer; ``put`` never blocks.

    The buffer is a ``deque`` (appends and pops are atomic under the GIL) rather than a
    ``queue.Queue``: a ``Queue`` takes a lock and notifies a condition on every line,
    and when the writer holds that lock the loop thread blocks on it and then waits for
    the GIL — a multi-millisecond stall of every request, measured under load. Here the
    loop only calls ``Event.set`` when the writer is asleep, which a busy stream (the
    access log under load) never lets it be. A confirmed sink (the audit trail) does not
    linger: its writer sleeps at once, so each entry is written and fsynced as soon as it
    is put, and the answer waiting for it is not delayed by the polling interval.
    """

    def __init__(self, name: str, max_lines: int, *, confirm: bool = False) -> None:
        self.stats = SinkStats(name)
        self.confirm = confirm  # fsync each batch and resolve receipts
        self._max_lines = max_lines
        self._items: collections.deque[_Item] = collections.deque()
        self._wake = threading.Event()
        self._asleep = False
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=f"log-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def put(self, line: bytes, receipt: Future[bool] | None = None) -> None:
        if len(self._items) >= self._max_lines:
            self.stats.dropped += 1
            if receipt is not None:
                receipt.set_result(False)
            return
        self._items.append((line, receipt))
        if self._asleep:
            self._asleep = False
            self._wake.set()

    def close(self, timeout: float) -> None:
        """Write what is buffered, then stop; a writer stuck on its destination is left."""
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout=timeout)

    def _run(self) -> None:
        rounds = 0 if self.confirm else _LINGER_ROUNDS
        while True:
            batch = self._take()
            if batch:
                self._write_batch(batch)
                continue
            if self._stopping:
                self._finish()
                return
            self._idle(rounds)

    def _take(self) -> list[_Item]:
        items = self._items
        batch: list[_Item] = []
        while items and len(batch) < _BATCH:
            batch.append(items.popleft())
        return batch

    def _idle(self, rounds: int) -> None:
        """Wait for lines: poll a while (no wake-up needed from ``put``), then sleep."""
        for _ in range(rounds):
            time.sleep(_LINGER_SECONDS)
            if self._items or self._stopping:
                return
        self._wake.clear()
        self._asleep = True
        if self._items or self._stopping:  # put before it saw the flag: don't sleep
            self._asleep = False
            return
        self._wake.wait()
        self._asleep = False

    def _write_batch(self, batch: list[_Item]) -> None:
        data = b"".join(line for line, _ in batch)
        lines = sum(1 for line, _ in batch if line)
        ok = True
        if data:
            try:
                self._write(data)
                self.stats.written += lines
                self.stats.failing = None
            except (OSError, ValueError) as exc:
                ok = False
                self.stats.errors += 1
                self.stats.dropped += lines
                self.stats.failing = _describe(exc)
        for _, receipt in batch:
            if receipt is not None and not receipt.done():
                receipt.set_result(ok)

    def _write(self, data: bytes) -> None:
        raise NotImplementedError

    def _finish(self) -> None:
        """Release what the sink holds (the thread is ending)."""

    def reopen(self) -> None:
        """Reopen the destination before the next write (SIGHUP); a no-op by default."""


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno is not None:
        return f"{errno.errorcode.get(exc.errno, exc.errno)}: {exc.strerror}"
    return repr(exc)


class StdoutSink(Sink):
    """Writes to file descriptor 1 directly: no Python buffer lock for a stuck pipe to hold."""

    def __init__(self, fd: int = 1) -> None:
        super().__init__("stdout", STDOUT_QUEUE_LINES)
        self._fd = fd

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]


class FileSink(Sink):
    """An append-only file that rotates by size and can be reopened."""

    def __init__(self, path: Path, max_bytes: int, backups: int, *, confirm: bool = False) -> None:
        super().__init__(path.name, FILE_QUEUE_LINES, confirm=confirm)
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        self._fd: int | None = None
        self._size = 0
        self._reopen = threading.Event()
        self._open()  # raises OSError at configure time: a bad log dir fails start-up

    def _open(self) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self._fd = fd
        self._size = os.fstat(fd).st_size

    def _close_fd(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    def reopen(self) -> None:
        self._reopen.set()

    def _write(self, data: bytes) -> None:
        if self._reopen.is_set():
            self._reopen.clear()
            self._close_fd()
        if self._fd is None:
            self._open()
        while data:
            cut = self._fitting(data)
            if cut == 0 and self._size > 0:  # the next line does not fit: new file first
                self._rotate()
                cut = self._fitting(data) or (data.find(b"\n") + 1 or len(data))
            self._write_all(data[:cut])
            data = data[cut:]
            if data or (self.max_bytes > 0 and self._size >= self.max_bytes):
                self._rotate()

    def _fitting(self, data: bytes) -> int:
        """How many bytes of whole lines at the start of ``data`` fit under ``max_bytes``."""
        if self.max_bytes <= 0 or self._size + len(data) <= self.max_bytes:
            return len(data)
        room = self.max_bytes - self._size
        return data.rfind(b"\n", 0, max(room, 0)) + 1

    def _write_all(self, chunk: bytes) -> None:
        assert self._fd is not None
        view = memoryview(chunk)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        if self.confirm:
            os.fsync(self._fd)
        self._size += len(chunk)

    def _rotate(self) -> None:
        self._close_fd()
        if self.backups > 0:
            for i in range(self.backups - 1, 0, -1):
                older = self.path.with_name(f"{self.path.name}.{i}")
                if older.exists():
                    os.replace(older, self.path.with_name(f"{self.path.name}.{i + 1}"))
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        else:
            os.truncate(self.path, 0)
        self.stats.rotations += 1
        self._open()

    def _finish(self) -> None:
        self._close_fd()


# ---- receipts (confirmed writes) --------------------------------------------------------

_RECEIPTS: contextvars.ContextVar[list[Future[bool]] | None] = contextvars.ContextVar(
    "hedgegrid_log_receipts", default=None
)


@contextlib.contextmanager
def receipts() -> Iterator[list[Future[bool]]]:
    """Collect one receipt per confirmed sink line logged inside the block.

    A receipt resolves to True once its line is written and fsynced, False if the
    sink failed or dropped it. Used by the audit trail.
    """
    collected: list[Future[bool]] = []
    token = _RECEIPTS.set(collected)
    try:
        yield collected
    finally:
        _RECEIPTS.reset(token)


# ---- structlog wiring --------------------------------------------------------------------


class _StreamLogger:
    """structlog logger that hands a rendered JSON line to its stream's sinks.

    The sinks are looked up at call time, so a logger created before a reconfigure
    (module-level loggers, cached loggers) writes to the current sinks.
    """

    def __init__(self, stream: str, name: str | None = None) -> None:
        self._stream = stream
        self.name = name  # the ``logger`` field of every line (see ``_add_logger_name``)

    def msg(self, message: bytes | str) -> None:
        line = (message if isinstance(message, bytes) else message.encode()) + b"\n"
        collecting = _RECEIPTS.get()
        for sink in _Setup.sinks.get(self._stream, ()):
            receipt: Future[bool] | None = None
            if sink.confirm and collecting is not None:
                receipt = Future()
                collecting.append(receipt)
            sink.put(line, receipt)

    log = debug = info = warning = warn = error = critical = exception = fatal = msg


@dataclass
class _LoggingState:
    """What ``configure_logging`` opened, so it can be reopened, inspected and closed."""

    sinks: dict[str, tuple[Sink, ...]] = field(default_factory=dict)
    all: list[Sink] = field(default_factory=list)


_Setup = _LoggingState()


def _render_default(obj: Any) -> Any:
    return str(obj)


def _dumps(event_dict: dict[str, Any], **_kw: Any) -> bytes:
    """orjson, falling back to text for what orjson refuses (huge ints, odd keys, surrogates).

    The serializer of structlog's ``JSONRenderer``: a log call must never raise into the
    code that made it.
    """
    try:
        return orjson.dumps(event_dict, default=_render_default)
    except (TypeError, orjson.JSONEncodeError):
        safe = {str(k): _safe_value(v) for k, v in event_dict.items()}
        return orjson.dumps(safe, default=_render_default)


def _safe_value(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    if isinstance(value, bool | float | type(None)):
        return value
    if isinstance(value, int) and -(2**63) <= value < 2**64:
        return value
    try:
        orjson.dumps(value, default=_render_default)
        return value
    except (TypeError, orjson.JSONEncodeError):
        return _safe_value(repr(value))


def configure_logging(
    log_dir: Path,
    level: str = "INFO",
    stdout: bool = True,
    max_bytes: int = DEFAULT_MAX_BYTES,
    backups: int = DEFAULT_BACKUPS,
    stdout_fd: int = 1,
) -> None:
    """Set up the three JSON streams under ``log_dir``. Safe to call again (reconfigures).

    Raises ``LogSetupError`` (one line) when the directory or a file cannot be used.
    """
    if level.upper() not in LEVELS:
        raise LogSetupError(f"log level must be one of {', '.join(LEVELS)}, got {level!r}")
    shutdown_logging()
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
        files = {
            name: FileSink(log_dir / fname, max_bytes, backups, confirm=(name == AUDIT))
            for name, fname in _STREAM_FILES.items()
        }
    except OSError as exc:
        raise LogSetupError(f"cannot write logs in {log_dir}: {_describe(exc)}") from None
    out: tuple[Sink, ...] = (StdoutSink(stdout_fd),) if stdout else ()
    _Setup.all = [*out, *files.values()]
    _Setup.sinks = {
        TRADING: (*out, files[TRADING]),
        ACCESS: (files[ACCESS],),
        AUDIT: (*out, files[TRADING], files[AUDIT]),
    }
    for sink in _Setup.all:
        sink.start()
    _configure_structlog(level)


def _configure_structlog(level: str) -> None:
    """structlog's production recipe: filtering bound loggers, cached on first use.

    Loggers are module-level lazy proxies (``get_logger``) assembled once, on their
    first line. Caching is safe across ``configure_logging`` calls because a
    ``_StreamLogger`` looks its sinks up by stream name on every line; the level is the
    one configured when a logger is first used (the program configures logging before
    anything logs; tests use the default INFO).
    """
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            _add_logger_name,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(serializer=_dumps),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level.upper()),
        logger_factory=_factory,
        cache_logger_on_first_use=True,
    )


def _factory(*args: Any) -> _StreamLogger:
    """``logger_factory``: ``(stream, name)`` as given to ``get_logger``."""
    stream = args[0] if args and args[0] in _STREAM_FILES else TRADING
    name = args[1] if len(args) > 1 else None
    return _StreamLogger(stream, name)


def _add_logger_name(logger: Any, _method: str, event_dict: Any) -> Any:
    name = getattr(logger, "name", None)
    if name is not None:
        event_dict.setdefault("logger", name)
    return event_dict


_RECORDS = structlog.make_filtering_bound_logger("DEBUG")


def get_logger(name: str, stream: str = TRADING) -> FilteringBoundLogger:
    """A logger whose lines carry ``logger=name`` and go to ``stream``'s sinks.

    Meant to be called once, at module level (``log = get_logger("api", ACCESS)``): it
    returns a lazy proxy that is assembled on its first line and then cached, so a hot
    path (every request) costs one method call. Access and audit lines are written at
    any ``--log-level``: they are records, not diagnostics, so those streams bypass the
    level filter.
    """
    wrapper = _RECORDS if stream in (ACCESS, AUDIT) else None
    proxy = structlog.wrap_logger(None, wrapper_class=wrapper, logger_factory_args=(stream, name))
    return cast(FilteringBoundLogger, proxy)


def access_line(fields: dict[str, Any]) -> None:
    """Write one ``api_access.log`` line: the hot path of every HTTP request.

    The line has the same shape as every structlog line (``event``, ``logger``,
    ``level``, ISO-8601 UTC ``timestamp``), but it is built here rather than by
    structlog's processor chain, which cost about ten times as much per request
    (~30 µs against ~3 µs, measured in-process): most of a GET's own Python time.
    Access lines are records, written at any ``--log-level``; nothing binds context
    variables into them. ``fields`` is consumed.
    """
    sinks = _Setup.sinks.get(ACCESS)
    if not sinks:
        return
    fields["event"] = "http_request"
    fields["logger"] = "api"
    fields["level"] = "info"
    fields["timestamp"] = _utc_now_iso()
    line = _dumps(fields) + b"\n"
    for sink in sinks:
        sink.put(line)


_second_text: tuple[int, str] = (-1, "")


def _utc_now_iso() -> str:
    """``2026-11-30T13:19:54.586705Z``, as structlog's ``TimeStamper(fmt="iso", utc=True)``.

    The date and time up to the second are formatted once per second (requests come
    thousands a second); only the microseconds are formatted per line.
    """
    global _second_text
    now = time.time_ns() // 1000
    second, micros = divmod(now, 1_000_000)
    if second != _second_text[0]:
        moment = datetime.datetime.fromtimestamp(second, datetime.UTC)
        _second_text = (second, moment.strftime("%Y-%m-%dT%H:%M:%S"))
    return f"{_second_text[1]}.{micros:06d}Z"


def reopen_logs() -> None:
    """Reopen every log file before its next line (SIGHUP, after an external rotation)."""
    for sink in _Setup.all:
        sink.reopen()


def sink_stats() -> list[SinkStats]:
    """Counters of every sink (for /metrics)."""
    return [sink.stats for sink in _Setup.all]


def sink_problems() -> list[str]:
    """One sentence per file sink that is failing now (for /health); stdout is not judged.

    A stdout nobody reads only costs stdout lines (counted in the metrics); the files
    are the record, so only they make the service degraded.
    """
    return [
        f"log file {s.stats.name} is failing: {s.stats.failing}"
        for s in _Setup.all
        if isinstance(s, FileSink) and s.stats.failing is not None
    ]


def shutdown_logging(timeout: float = 2.0) -> None:
    """Drain every sink (at most ``timeout`` seconds each) and close the files."""
    sinks, _Setup.all, _Setup.sinks = _Setup.all, [], {}
    for sink in sinks:
        sink.close(timeout)


def emit_stdout(line: bytes, timeout: float = 2.0) -> bool:
    """Write one final line to stdout without risking a hang on a pipe nobody reads."""
    sink = StdoutSink()
    sink.start()
    sink.put(line if line.endswith(b"\n") else line + b"\n")
    sink.close(timeout)
    return sink.stats.written == 1


# Until ``configure_logging`` runs, lines go nowhere (no sinks) but through the same
# processors, so a logger first used early is cached with the right chain.
_configure_structlog("INFO")

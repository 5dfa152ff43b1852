"""Structured JSON logging (structlog + orjson), one object per line.

Every line carries an ISO-8601 UTC ``timestamp``, ``level``, ``logger`` and
``event``. Lines are rendered on the caller's thread (cheap) and written to their
files by one writer thread, so the event loop never waits on a disk or a pipe.

Streams:
- ``trading``: stdout and ``logs/trading.log`` (strategy, node, audit copies)
- ``access``: ``logs/api_access.log`` (one line per HTTP request)
- ``audit``: ``logs/audit.log`` and the trading stream (every control action)
"""

from __future__ import annotations

import contextlib
import queue
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson
import structlog

TRADING = "trading"
ACCESS = "access"
AUDIT = "audit"

_STREAM_FILES = {TRADING: "trading.log", ACCESS: "api_access.log", AUDIT: "audit.log"}


class LineWriter:
    """Writes rendered lines to their sinks from a single background thread."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[tuple[IO[bytes], ...], bytes] | None] = (
            queue.SimpleQueue()
        )
        self._thread = threading.Thread(target=self._run, name="hedgegrid-log-writer", daemon=True)
        self._thread.start()

    def write(self, sinks: tuple[IO[bytes], ...], line: bytes) -> None:
        self._queue.put((sinks, line))

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            sinks, line = item
            for sink in sinks:
                try:
                    sink.write(line)
                    sink.flush()
                except (OSError, ValueError):
                    pass  # a closed or full sink must not stop the others


class _StreamLogger:
    """structlog logger that hands a rendered JSON line to the writer thread."""

    def __init__(self, writer: LineWriter, sinks: tuple[IO[bytes], ...]) -> None:
        self._writer = writer
        self._sinks = sinks

    def msg(self, message: bytes | str) -> None:
        line = message if isinstance(message, bytes) else message.encode()
        self._writer.write(self._sinks, line + b"\n")

    log = debug = info = warning = warn = error = critical = exception = fatal = msg


@dataclass
class _LoggingState:
    """What ``configure_logging`` opened, so it can be closed and reconfigured."""

    writer: LineWriter | None = None
    files: list[IO[bytes]] = field(default_factory=list)
    sinks: dict[str, tuple[IO[bytes], ...]] = field(default_factory=dict)


_Setup = _LoggingState()


def _render_default(obj: Any) -> Any:
    return str(obj)


def _render_json(_logger: Any, _method: str, event_dict: Any) -> bytes:
    return orjson.dumps(event_dict, default=_render_default)


def configure_logging(log_dir: Path, level: str = "INFO", stdout: bool = True) -> None:
    """Set up the three JSON streams under ``log_dir``. Safe to call again (reconfigures)."""
    shutdown_logging()
    log_dir.mkdir(parents=True, exist_ok=True)
    writer = LineWriter()
    files = {name: open(log_dir / fname, "ab") for name, fname in _STREAM_FILES.items()}  # noqa: SIM115
    out: tuple[IO[bytes], ...] = (sys.stdout.buffer,) if stdout else ()
    _Setup.writer = writer
    _Setup.files = list(files.values())
    _Setup.sinks = {
        TRADING: (*out, files[TRADING]),
        ACCESS: (files[ACCESS],),
        AUDIT: (*out, files[TRADING], files[AUDIT]),
    }

    def factory(*args: Any) -> _StreamLogger:
        stream = args[0] if args and args[0] in _Setup.sinks else TRADING
        return _StreamLogger(writer, _Setup.sinks[stream])

    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
            structlog.processors.format_exc_info,
            _render_json,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level.upper()),
        logger_factory=factory,
        cache_logger_on_first_use=False,
    )


def get_logger(name: str, stream: str = TRADING) -> Any:
    """A bound logger whose lines carry ``logger=name`` and go to ``stream``'s sinks."""
    return structlog.get_logger(stream).bind(logger=name)


def shutdown_logging() -> None:
    """Drain the writer thread and close the files (at process exit)."""
    if _Setup.writer is not None:
        _Setup.writer.close()
        _Setup.writer = None
    for f in _Setup.files:
        with contextlib.suppress(OSError):
            f.close()
    _Setup.files = []

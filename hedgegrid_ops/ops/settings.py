"""Settings of the operations layer (HTTP control API and Prometheus endpoint).

Frozen so that a running server can never be re-pointed behind its own back, and
validated at construction so a bad port, timeout or an unsafe key/listener pairing
fails at start-up with a clear sentence instead of as an obscure socket error (or an
open control plane) later.
"""

from __future__ import annotations

import ipaddress
import math
import socket
import urllib.parse
from dataclasses import dataclass, field

DEFAULT_MAX_BAR_AGE = 120.0  # seconds without a bar before /health says degraded


def check_port(port: object, name: str = "port") -> int:
    """The one port rule (flags and settings): an integer 0..65535, 0 meaning any free port."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"{name} must be an integer between 0 and 65535, got {port!r}")
    return port


def _positive_seconds(value: object) -> bool:
    """A finite number > 0 (not a bool): the rule for every duration setting."""
    return (
        not isinstance(value, bool)
        and isinstance(value, int | float)
        and math.isfinite(value)
        and value > 0
    )


# A key shorter than this is guessable by brute force over a network in reasonable time
# (the failed-auth rate limit slows a guesser down, it does not make a short key strong).
MIN_KEY_LENGTH = 32


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses; false for anything reachable from outside."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything, so treat it as exposed


def webhook_target(url: str) -> str:
    """``scheme://host[:port]`` of a webhook URL: all that may be logged or shown.

    Slack and Discord put the secret in the path (``/services/T0/B0/XXXX``,
    ``/api/webhooks/ID/TOKEN``), others in the query or the user part, so everything
    but the scheme and the host stays out of logs, errors and ``repr``.
    """
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    shown = f"[{host}]" if ":" in host else host
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{parts.scheme}://{shown}" + (f":{port}" if port is not None else "")


def check_webhook_url(url: str, name: str = "the webhook URL") -> str:
    """The webhook rule: an absolute http(s) URL with a host and nothing unprintable.

    The error names the problem without repeating the URL (it may carry a token).
    """
    if not url.strip():
        raise ValueError(f"{name} is empty; give an https:// webhook URL or leave it unset")
    if not url.isprintable() or any(c.isspace() for c in url):
        raise ValueError(f"{name} must not contain spaces or control characters")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https"):
        scheme = f"{parts.scheme!r}" if parts.scheme else "none"
        raise ValueError(f"{name} must be an http:// or https:// URL (scheme is {scheme})")
    try:
        parts.port  # noqa: B018 - raises on a port out of range or not a number
    except ValueError:
        raise ValueError(f"{name} has an invalid port ({webhook_target(url)}...)") from None
    if not parts.hostname:
        raise ValueError(f"{name} has no host ({parts.scheme}://...)")
    return url


@dataclass(frozen=True)
class NotifySettings:
    """Where kill-switch trips, flattens and halts are posted (Slack/Discord webhooks).

    ``url`` may carry a secret token: ``repr`` and every log line show only
    ``target`` (scheme and host). ``timeout`` bounds one POST; a failed one is retried
    ``retries`` times with a backoff doubling from ``backoff`` seconds. At most
    ``queue_size`` messages wait for a slow receiver; past that the oldest is dropped.
    ``name`` says which instance is speaking (default: this host's name).
    """

    url: str
    timeout: float = 5.0
    name: str = field(default_factory=socket.gethostname)
    retries: int = 3
    backoff: float = 0.5
    queue_size: int = 32

    def __post_init__(self) -> None:
        check_webhook_url(self.url)
        for attr in ("timeout", "backoff"):
            if not _positive_seconds(getattr(self, attr)):
                raise ValueError(f"notify {attr} must be a positive number of seconds")
        if isinstance(self.retries, bool) or not 0 <= self.retries <= 10:
            raise ValueError("notify retries must be 0..10")
        if isinstance(self.queue_size, bool) or self.queue_size < 1:
            raise ValueError("notify queue_size must be at least 1")
        if not self.name.strip() or not self.name.isprintable():
            raise ValueError("notify name must be printable, non-blank text")

    @property
    def target(self) -> str:
        return webhook_target(self.url)

    def __repr__(self) -> str:
        return (
            f"NotifySettings(target={self.target!r}, timeout={self.timeout}, "
            f"name={self.name!r}, retries={self.retries}, queue_size={self.queue_size})"
        )

    __str__ = __repr__


@dataclass(frozen=True)
class OpsSettings:
    """Where the ops servers listen, how they judge health and how they defend themselves.

    ``api_port == 0`` binds an ephemeral port (tests); ``prometheus_port == 0``
    disables the separate metrics listener (``/metrics`` stays on the API port).

    Control-plane limits (see docs/hardening.md for what each defends against):
    ``allowed_hosts`` extends the ``Host`` header allow-list (IP literals and
    ``localhost`` are always accepted); ``cors_origins`` are the only origins a browser
    may call from (none by default); ``metrics_require_key`` puts ``/metrics`` behind the
    key (Prometheus sends it as ``Authorization: Bearer``); ``header_timeout`` bounds the
    wait for a request's headers (slow-header attacks), ``body_timeout`` the wait for its
    body; ``max_connections`` caps open connections per listener (the oldest idle one is
    dropped for a newcomer); ``max_inflight`` caps requests being handled at once, with
    ``/health`` and ``/metrics`` exempt; ``shutdown_timeout`` bounds how long a stop waits
    for requests in flight; ``auth_failures_per_minute`` (wrong keys; a missing key is not
    a guess) and ``posts_per_minute`` are per-client budgets answered with 429 when spent.
    """

    host: str = "127.0.0.1"
    api_port: int = 8080
    prometheus_port: int = 9090
    api_key: str | None = None
    max_bar_age: float = DEFAULT_MAX_BAR_AGE
    command_timeout: float = 5.0
    instrument_id: str = "BTCUSDT-PERP.BINANCE"
    allowed_hosts: tuple[str, ...] = ()
    cors_origins: tuple[str, ...] = ()
    metrics_require_key: bool = False
    header_timeout: float = 5.0
    body_timeout: float = 5.0
    max_connections: int = 4096
    max_inflight: int = 64
    shutdown_timeout: float = 2.0
    auth_failures_per_minute: int = 30
    posts_per_minute: int = 120
    notify: NotifySettings | None = None  # None: nothing is posted to a webhook

    def __post_init__(self) -> None:
        for name in ("api_port", "prometheus_port"):
            check_port(getattr(self, name), name)
        if self.api_port != 0 and self.api_port == self.prometheus_port:
            raise ValueError(
                f"the API port and the Prometheus port must differ, both are {self.api_port}"
            )
        for name in (
            "max_bar_age",
            "command_timeout",
            "header_timeout",
            "body_timeout",
            "shutdown_timeout",
        ):
            value = getattr(self, name)
            if not _positive_seconds(value):
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
        for name in (
            "max_connections",
            "max_inflight",
            "auth_failures_per_minute",
            "posts_per_minute",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.api_key is not None and not self.api_key.strip():
            raise ValueError("api_key must not be empty or blank; leave it unset to disable auth")
        if self.api_key is not None and not self.api_key.isprintable():
            raise ValueError("api_key must be printable text (no control characters)")
        if not self.host:
            raise ValueError("host must not be empty")
        if self.api_key is None and not is_loopback(self.host):
            raise ValueError(
                f"an API key is required when listening on {self.host} (not a loopback "
                "address): set HEDGEGRID_API_KEY or --api-key"
            )
        if self.metrics_require_key and self.api_key is None:
            raise ValueError("metrics_require_key needs an API key")

    @property
    def auth_enabled(self) -> bool:
        return self.api_key is not None

    def key_warning(self) -> str | None:
        """Why the configured key is weak, or None. Live mode refuses what paper mode warns."""
        if self.api_key is not None and len(self.api_key) < MIN_KEY_LENGTH:
            return (
                f"the API key is {len(self.api_key)} characters; use at least "
                f"{MIN_KEY_LENGTH} (e.g. openssl rand -hex 32)"
            )
        return None

    def __repr__(self) -> str:
        # The key must never reach a log line or a traceback through repr().
        key = "<set>" if self.api_key is not None else None
        return (
            f"OpsSettings(host={self.host!r}, api_port={self.api_port}, "
            f"prometheus_port={self.prometheus_port}, api_key={key!r}, "
            f"max_bar_age={self.max_bar_age}, command_timeout={self.command_timeout}, "
            f"instrument_id={self.instrument_id!r}, allowed_hosts={self.allowed_hosts!r}, "
            f"cors_origins={self.cors_origins!r}, metrics_require_key={self.metrics_require_key}, "
            f"notify={self.notify!r})"
        )

    __str__ = __repr__

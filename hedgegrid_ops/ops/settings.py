"""Settings of the operations layer (HTTP control API and Prometheus endpoint).

Frozen so that a running server can never be re-pointed behind its own back, and
validated at construction so a bad port or timeout fails at start-up with a clear
sentence instead of as an obscure socket error later.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class OpsSettings:
    """Where the ops servers listen and how they judge health and wait for commands.

    ``api_port == 0`` binds an ephemeral port (tests); ``prometheus_port == 0``
    disables the separate metrics listener (``/metrics`` stays on the API port).
    """

    host: str = "127.0.0.1"
    api_port: int = 8080
    prometheus_port: int = 9090
    api_key: str | None = None
    max_bar_age: float = 120.0
    command_timeout: float = 5.0
    instrument_id: str = "BTCUSDT-PERP.BINANCE"

    def __post_init__(self) -> None:
        for name in ("api_port", "prometheus_port"):
            port = getattr(self, name)
            if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
                raise ValueError(f"{name} must be an integer between 0 and 65535, got {port!r}")
        if self.api_port != 0 and self.api_port == self.prometheus_port:
            raise ValueError(f"api_port and prometheus_port must differ, both are {self.api_port}")
        for name in ("max_bar_age", "command_timeout"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
        if self.api_key is not None and not self.api_key.strip():
            raise ValueError("api_key must not be empty or blank; leave it unset to disable auth")
        if not self.host:
            raise ValueError("host must not be empty")

    @property
    def auth_enabled(self) -> bool:
        return self.api_key is not None

    def __repr__(self) -> str:
        # The key must never reach a log line or a traceback through repr().
        key = "<set>" if self.api_key is not None else None
        return (
            f"OpsSettings(host={self.host!r}, api_port={self.api_port}, "
            f"prometheus_port={self.prometheus_port}, api_key={key!r}, "
            f"max_bar_age={self.max_bar_age}, command_timeout={self.command_timeout}, "
            f"instrument_id={self.instrument_id!r})"
        )

    __str__ = __repr__

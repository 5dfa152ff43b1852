"""API keys for the Binance adapter, read from the environment and never shown.

The variable names are the ones NautilusTrader's Binance adapter reads for each
environment (``nautilus_trader.adapters.binance.common.credentials``), so an
operator who already set them for Nautilus sets nothing new. The local exchange
has its own pair, so a rehearsal can never pick up mainnet or testnet keys.

``ApiCredentials`` hides both values from ``repr``/``str``: a key that reaches a
log line, a traceback or an error message through formatting is a leak.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

KEY_VARIABLES: dict[str, tuple[str, str]] = {
    "live": ("BINANCE_API_KEY", "BINANCE_API_SECRET"),
    "testnet": ("BINANCE_FUTURES_TESTNET_API_KEY", "BINANCE_FUTURES_TESTNET_API_SECRET"),
    "demo": ("BINANCE_DEMO_API_KEY", "BINANCE_DEMO_API_SECRET"),
    "local": ("BINANCE_LOCAL_API_KEY", "BINANCE_LOCAL_API_SECRET"),
}


class MissingCredentials(Exception):
    """A key variable is unset or blank; the message names the variable, never a value."""


@dataclass(frozen=True)
class ApiCredentials:
    """An API key and secret; ``repr`` shows only which variables they came from."""

    api_key: str = field(repr=False)
    api_secret: str = field(repr=False)
    source: tuple[str, str] = ("", "")

    def __str__(self) -> str:
        return f"ApiCredentials(from {self.source[0]} / {self.source[1]})"

    __repr__ = __str__

    def secrets(self) -> tuple[str, str]:
        """Both values, for tests that grep output for them."""
        return self.api_key, self.api_secret


def key_variables(environment: str) -> tuple[str, str]:
    """The (key, secret) variable names for a venue environment."""
    return KEY_VARIABLES[environment]


def load_credentials(environment: str, env: Mapping[str, str] | None = None) -> ApiCredentials:
    """Read the pair for ``environment``; raise ``MissingCredentials`` naming what is missing."""
    env = os.environ if env is None else env
    key_var, secret_var = key_variables(environment)
    values = []
    for name in (key_var, secret_var):
        value = env.get(name, "").strip()
        if not value:
            raise MissingCredentials(
                f"{name} is not set: export it with your Binance {environment} API "
                f"{'key' if name == key_var else 'secret'} (see docs/operations.md, Live mode)"
            )
        values.append(value)
    return ApiCredentials(values[0], values[1], (key_var, secret_var))

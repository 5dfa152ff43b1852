"""Hedge-mode grid trading for USDT-margined perpetuals on NautilusTrader, with an ops layer."""

__version__ = "0.1.0"

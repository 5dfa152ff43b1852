"""Offline simulated Binance USDT-M market, laid out like a Nautilus adapter.

``process`` and ``replay`` are pure market models (no Nautilus import);
``convert`` maps their samples to Nautilus data; ``data``/``config``/``factories``
plug the model into a live TradingNode next to the sandbox execution client;
``backtest_data`` feeds the same model to a BacktestEngine.

Import the Nautilus-facing pieces from their modules (``...sim.factories`` etc.):
this package init stays light so the pure models import without Nautilus.
"""

from hedgegrid_ops.venues.sim.process import (
    REGIMES,
    MinuteSample,
    PriceProcess,
    TickSample,
)
from hedgegrid_ops.venues.sim.replay import Kline, ReplayError, ReplayProcess, load_binance_klines

__all__ = [
    "REGIMES",
    "Kline",
    "MinuteSample",
    "PriceProcess",
    "ReplayError",
    "ReplayProcess",
    "TickSample",
    "load_binance_klines",
]

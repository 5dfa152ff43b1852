"""The simulated market as a ready-made BacktestEngine data set.

Uses the same price process and the same sample→Nautilus conversion as the live
client, so a backtest and a paper session with one seed trade the same market.
"""

from __future__ import annotations

from collections import Counter

from nautilus_trader.core.data import Data

from hedgegrid_ops.venues.sim.convert import sample_to_data
from hedgegrid_ops.venues.sim.instrument import make_btcusdt_perp
from hedgegrid_ops.venues.sim.process import PriceProcess

BACKTEST_START_NS = 1_704_067_200_000_000_000  # 2024-01-01T00:00:00Z


def generate_backtest_data(
    seed: int,
    minutes: int,
    ticks_per_minute: int = 12,
    initial_price: float = 60000.0,
    start_ns: int = BACKTEST_START_NS,
) -> list[Data]:
    """QuoteTick, TradeTick, Bar, MarkPriceUpdate and FundingRateUpdate for ``minutes``.

    Every object's ``ts_init`` equals its ``ts_event`` and the list is sorted by
    ``ts_init`` (stably, so within one timestamp the publication order is kept),
    which is the order ``BacktestEngine.add_data`` expects.
    """
    instrument = make_btcusdt_perp()
    process = PriceProcess(
        seed=seed,
        initial_price=initial_price,
        start_ns=start_ns,
        ticks_per_minute=ticks_per_minute,
    )
    data: list[Data] = []
    for sample in process.minutes(minutes):
        data.extend(sample_to_data(sample, instrument))
    data.sort(key=lambda d: d.ts_init)
    return data


def regimes_seen(
    seed: int,
    minutes: int,
    ticks_per_minute: int = 12,
    initial_price: float = 60000.0,
    start_ns: int = BACKTEST_START_NS,
) -> dict[str, int]:
    """Minutes spent in each regime by the run ``generate_backtest_data`` would build.

    Lets a backtest assert which market conditions it actually exercised.
    """
    process = PriceProcess(
        seed=seed,
        initial_price=initial_price,
        start_ns=start_ns,
        ticks_per_minute=ticks_per_minute,
    )
    return dict(Counter(sample.regime for sample in process.minutes(minutes)))

"""Configuration of the simulated market-data client."""

from __future__ import annotations

from nautilus_trader.config import LiveDataClientConfig


class SimDataClientConfig(LiveDataClientConfig, frozen=True):
    """Settings for :class:`~hedgegrid_ops.venues.sim.data.SimMarketDataClient`.

    Parameters
    ----------
    seed : int
        Seed of the synthetic price process (and of the replay tick jitter): the same
        seed replays the same market, which makes paper sessions reproducible.
    speed : float
        Simulated minutes per wall-clock second. 60 turns an hour into a minute.
    initial_price : float
        Starting price of the synthetic process (ignored in replay mode).
    ticks_per_minute : int
        Quote+trade ticks per simulated minute (>= 4 in replay mode).
    book_top_btc : tuple[float, float]
        Range of the quoted bid and ask sizes (BTC), drawn per tick.
    replay_path : str, optional
        A Binance 1-minute kline CSV to replay instead of the synthetic process.
    start_ns : int, optional
        Simulated start time; ``None`` means the wall clock floored to the minute.
        Ignored in replay mode, where the file carries its own times.
    """

    seed: int = 7
    speed: float = 60.0
    initial_price: float = 60000.0
    ticks_per_minute: int = 12
    book_top_btc: tuple[float, float] = (0.2, 8.0)
    replay_path: str | None = None
    start_ns: int | None = None

"""Run the real HedgeGridV1 in a Nautilus BacktestEngine, over the simulated market or
replayed Binance klines.

Deterministic and fast (everything on the calling thread, simulated clock), so
tests and the ``backtest`` command can check the strategy's trading behaviour
over hours of market in seconds. Market data is generated and fed in chunks of a
simulated day (Nautilus's streaming mode), so memory stays flat on long runs and a
progress callback can report between chunks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from nautilus_trader.backtest.engine import BacktestEngine
from nautilus_trader.backtest.models import FillModel, LatencyModel, MakerTakerFeeModel
from nautilus_trader.config import BacktestEngineConfig, LoggingConfig
from nautilus_trader.core.data import Data
from nautilus_trader.model.currencies import USDT
from nautilus_trader.model.enums import AccountType, OmsType
from nautilus_trader.model.identifiers import TraderId, Venue
from nautilus_trader.model.objects import Money

from hedgegrid_ops.config import StrategyConfig, VenueConfig
from hedgegrid_ops.grid.units import NS_PER_MINUTE
from hedgegrid_ops.snapshot import SnapshotStore
from hedgegrid_ops.strategy import HedgeGridV1
from hedgegrid_ops.strategy.config import VenueBehaviour
from hedgegrid_ops.venues.sim.backtest_data import BACKTEST_START_NS
from hedgegrid_ops.venues.sim.convert import sample_to_data
from hedgegrid_ops.venues.sim.instrument import make_btcusdt_perp
from hedgegrid_ops.venues.sim.process import MinuteSource, PriceProcess, book_top_steps
from hedgegrid_ops.venues.sim.replay import Kline, ReplayProcess

CHUNK_MINUTES = 1440  # one simulated day of data per engine.run() in streaming mode

Progress = Callable[[int, int], None]
"""Called with (minutes done, minutes in total) after each chunk."""


@dataclass(frozen=True)
class Scheduled:
    """A call on the strategy at a simulated moment of the run (e.g. an operator's flatten).

    Fired by a time alert on the engine's simulated clock, on the engine's thread,
    between two market events: the same place a command from the bus runs live.
    """

    after_minutes: float
    action: Callable[[HedgeGridV1], object]


@dataclass(frozen=True)
class BacktestRun:
    engine: BacktestEngine
    strategy: HedgeGridV1
    starting_balance: float


def market_source(
    venue_config: VenueConfig, minutes: int | None, klines: Sequence[Kline] | None
) -> tuple[MinuteSource, int]:
    """The replay of ``klines`` when given, else ``minutes`` of the seeded simulated market."""
    market = venue_config.market
    book_top = book_top_steps(*market.book_top_btc)
    if klines:
        replay = ReplayProcess(
            klines, ticks_per_minute=market.ticks_per_minute, seed=market.seed, book_top=book_top
        )
        return replay, len(klines)
    if minutes is None or minutes <= 0:
        raise ValueError("a simulated backtest needs minutes > 0")
    process = PriceProcess(
        seed=market.seed,
        initial_price=market.initial_price,
        start_ns=BACKTEST_START_NS,
        ticks_per_minute=market.ticks_per_minute,
        book_top=book_top,
    )
    return process, minutes


def _chunk(source: MinuteSource, minutes: int) -> list[Data]:
    instrument = make_btcusdt_perp()
    data: list[Data] = []
    for _ in range(minutes):
        data.extend(sample_to_data(source.next_minute(), instrument))
    data.sort(key=lambda d: d.ts_init)  # stable: publication order kept within a timestamp
    return data


def run_backtest(
    strategy_config: StrategyConfig,
    venue_config: VenueConfig,
    minutes: int | None = None,
    store: SnapshotStore | None = None,
    klines: Sequence[Kline] | None = None,
    progress: Progress | None = None,
    schedule: Sequence[Scheduled] = (),
    latency_model: LatencyModel | None = None,
    silent_minutes: range | None = None,
    venue_behaviour: VenueBehaviour | None = None,
) -> BacktestRun:
    """Run the strategy to the end of the market; the caller disposes ``run.engine``.

    ``schedule`` makes calls on the strategy during the run (minutes from the start of
    the market); ``latency_model`` delays the venue's handling of orders and cancels
    (by default it answers at once). ``silent_minutes`` drops every market-data item of
    those minutes (from the start of the market): a feed stall, for the stale-data
    protection. ``venue_behaviour`` makes the strategy act as it would at a live venue.
    """
    market = venue_config.market
    source, total = market_source(venue_config, minutes, klines)
    engine = BacktestEngine(
        BacktestEngineConfig(
            trader_id=TraderId("BACKTEST-001"),
            logging=LoggingConfig(bypass_logging=True),
        )
    )
    venue = Venue(venue_config.venue)
    engine.add_venue(
        venue=venue,
        oms_type=OmsType.HEDGING,
        account_type=AccountType.MARGIN,
        base_currency=USDT,
        starting_balances=[Money(venue_config.account.starting_balance_usdt, USDT)],
        default_leverage=Decimal(venue_config.account.leverage),
        fill_model=FillModel(random_seed=market.seed),
        fee_model=MakerTakerFeeModel(),
        bar_execution=False,
        use_reduce_only=False,  # hedge mode: exits are bound to their position id (see node.py)
        latency_model=latency_model,
    )
    engine.add_instrument(make_btcusdt_perp())
    strategy = HedgeGridV1(
        strategy_config,
        reduce_only_exits=False,
        venue=venue_behaviour,
        store=store,
        wall_clock=lambda: engine.kernel.clock.timestamp(),
    )
    engine.add_strategy(strategy)
    start_ns = klines[0].open_time_ns if klines else BACKTEST_START_NS
    for index, item in enumerate(schedule):
        strategy.clock.set_time_alert_ns(
            f"scheduled-{index}",
            start_ns + int(item.after_minutes * NS_PER_MINUTE),
            lambda _event, action=item.action: action(strategy),
        )
    silent = None
    if silent_minutes is not None:
        silent = range(
            start_ns + silent_minutes.start * NS_PER_MINUTE,
            start_ns + silent_minutes.stop * NS_PER_MINUTE,
        )
    done = 0
    while done < total:
        n = min(CHUNK_MINUTES, total - done)
        data = _chunk(source, n)
        if silent is not None:
            data = [d for d in data if d.ts_init not in silent]
        engine.add_data(data)
        engine.run(streaming=True)
        engine.clear_data()
        done += n
        if progress is not None:
            progress(done, total)
    engine.end()
    return BacktestRun(engine, strategy, venue_config.account.starting_balance_usdt)

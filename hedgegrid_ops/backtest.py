"""Run the real HedgeGridV1 over generated market data in a Nautilus BacktestEngine.

Deterministic and fast (everything on the calling thread, simulated clock), so
tests and the ``backtest`` command can check the strategy's trading behaviour
over hours of market in seconds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from nautilus_trader.backtest.engine import BacktestEngine
from nautilus_trader.backtest.models import FillModel, LatencyModel, MakerTakerFeeModel
from nautilus_trader.config import BacktestEngineConfig, LoggingConfig
from nautilus_trader.model.currencies import USDT
from nautilus_trader.model.enums import AccountType, OmsType
from nautilus_trader.model.identifiers import TraderId, Venue
from nautilus_trader.model.objects import Money

from hedgegrid_ops.config import StrategyConfig, VenueConfig
from hedgegrid_ops.snapshot import SnapshotStore
from hedgegrid_ops.strategy import HedgeGridV1
from hedgegrid_ops.venues.sim.backtest_data import BACKTEST_START_NS, generate_backtest_data
from hedgegrid_ops.venues.sim.instrument import make_btcusdt_perp

NS_PER_MINUTE = 60_000_000_000


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


def run_backtest(
    strategy_config: StrategyConfig,
    venue_config: VenueConfig,
    minutes: int,
    store: SnapshotStore | None = None,
    schedule: Sequence[Scheduled] = (),
    latency_model: LatencyModel | None = None,
) -> BacktestRun:
    """Run ``minutes`` simulated minutes; the caller disposes ``run.engine`` when done.

    ``schedule`` makes calls on the strategy during the run; ``latency_model`` delays
    the venue's handling of orders and cancels (by default it answers at once).
    """
    market = venue_config.market
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
    engine.add_data(
        generate_backtest_data(
            seed=market.seed,
            minutes=minutes,
            ticks_per_minute=market.ticks_per_minute,
            initial_price=market.initial_price,
        )
    )
    strategy = HedgeGridV1(
        strategy_config,
        reduce_only_exits=False,
        store=store,
        wall_clock=lambda: engine.kernel.clock.timestamp(),
    )
    engine.add_strategy(strategy)
    for index, item in enumerate(schedule):
        strategy.clock.set_time_alert_ns(
            f"scheduled-{index}",
            BACKTEST_START_NS + int(item.after_minutes * NS_PER_MINUTE),
            lambda _event, action=item.action: action(strategy),
        )
    engine.run()
    return BacktestRun(engine, strategy, venue_config.account.starting_balance_usdt)

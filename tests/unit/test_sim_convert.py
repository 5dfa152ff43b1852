"""Sample → Nautilus object conversion, the instrument, and backtest data sets."""

from __future__ import annotations

from decimal import Decimal

from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
from nautilus_trader.backtest.models import FillModel, MakerTakerFeeModel
from nautilus_trader.common.actor import Actor
from nautilus_trader.config import LoggingConfig
from nautilus_trader.model.currencies import USDT
from nautilus_trader.model.data import (
    Bar,
    FundingRateUpdate,
    MarkPriceUpdate,
    QuoteTick,
    TradeTick,
)
from nautilus_trader.model.enums import AccountType, AggressorSide, OmsType
from nautilus_trader.model.objects import Money

from hedgegrid_ops.venues.sim.backtest_data import (
    BACKTEST_START_NS,
    generate_backtest_data,
    regimes_seen,
)
from hedgegrid_ops.venues.sim.convert import sample_to_data
from hedgegrid_ops.venues.sim.instrument import (
    BAR_TYPE,
    SIM_INSTRUMENT_ID,
    SIM_VENUE_NAME,
    make_btcusdt_perp,
)
from hedgegrid_ops.venues.sim.process import REGIMES, PriceProcess


def test_instrument_is_binance_like() -> None:
    inst = make_btcusdt_perp()
    assert inst.id == SIM_INSTRUMENT_ID
    assert str(inst.id.venue) == SIM_VENUE_NAME
    assert inst.price_precision == 1 and str(inst.price_increment) == "0.1"
    assert inst.size_precision == 3 and str(inst.size_increment) == "0.001"
    assert str(inst.min_quantity) == "0.001"
    assert inst.min_notional == Money(100, USDT)
    assert (inst.maker_fee, inst.taker_fee) == (Decimal("0.0002"), Decimal("0.0005"))
    assert inst.margin_maint < inst.margin_init
    assert (inst.base_currency.code, inst.quote_currency.code) == ("BTC", "USDT")
    assert inst.settlement_currency.code == "USDT"
    assert not inst.is_inverse
    assert BAR_TYPE.instrument_id == SIM_INSTRUMENT_ID
    assert BAR_TYPE.is_externally_aggregated()


def test_sample_to_data_preserves_values_and_order() -> None:
    inst = make_btcusdt_perp()
    sample = next(PriceProcess(4, 60000.0, BACKTEST_START_NS, 5).minutes(1))
    data = sample_to_data(sample, inst)
    assert [type(d) for d in data] == [TradeTick, QuoteTick] * 5 + [
        Bar,
        MarkPriceUpdate,
        FundingRateUpdate,
    ]
    for i, tick in enumerate(sample.ticks):
        trade, quote = data[2 * i], data[2 * i + 1]
        assert (quote.bid_price, quote.ask_price) == (
            inst.make_price(tick.bid),
            inst.make_price(tick.ask),
        )
        assert (quote.bid_size, quote.ask_size) == (
            inst.make_qty(tick.bid_size),
            inst.make_qty(tick.ask_size),
        )
        assert trade.price == inst.make_price(tick.trade_price)
        assert trade.size == inst.make_qty(tick.trade_size)
        expected_side = AggressorSide.BUYER if tick.aggressor == "BUY" else AggressorSide.SELLER
        assert trade.aggressor_side == expected_side
        assert quote.ts_event == trade.ts_event == quote.ts_init == tick.ts_ns
    bar, mark, funding = data[-3:]
    assert bar.bar_type == BAR_TYPE
    assert [bar.open, bar.high, bar.low, bar.close] == [
        inst.make_price(x) for x in (sample.open, sample.high, sample.low, sample.close)
    ]
    assert bar.volume == inst.make_qty(sample.volume)
    assert mark.value == inst.make_price(sample.mark_price)
    assert funding.rate == Decimal(f"{sample.funding_rate:.8f}")
    assert funding.interval == 480
    assert funding.next_funding_ns == sample.next_funding_ns
    assert bar.ts_event == mark.ts_event == funding.ts_event == sample.close_ns
    assert bar.ts_init == sample.close_ns
    trade_ids = {d.trade_id for d in data if isinstance(d, TradeTick)}
    assert len(trade_ids) == 5


def test_explicit_ts_init_applies_to_every_object() -> None:
    inst = make_btcusdt_perp()
    sample = next(PriceProcess(4, 60000.0, BACKTEST_START_NS, 3).minutes(1))
    data = sample_to_data(sample, inst, ts_init=123)
    assert {d.ts_init for d in data} == {123}
    assert data[0].ts_event == sample.ticks[0].ts_ns


def test_backtest_data_sorted_and_complete() -> None:
    minutes, ticks = 90, 6
    data = generate_backtest_data(seed=7, minutes=minutes, ticks_per_minute=ticks)
    assert len(data) == minutes * (2 * ticks + 3)
    stamps = [d.ts_init for d in data]
    assert stamps == sorted(stamps)
    assert stamps[0] > BACKTEST_START_NS
    counts = {t: sum(isinstance(d, t) for d in data) for t in (QuoteTick, TradeTick, Bar)}
    assert counts == {QuoteTick: minutes * ticks, TradeTick: minutes * ticks, Bar: minutes}
    again = generate_backtest_data(seed=7, minutes=minutes, ticks_per_minute=ticks)
    assert [repr(d) for d in data] == [repr(d) for d in again]


def test_regimes_seen_counts_minutes() -> None:
    seen = regimes_seen(seed=7, minutes=360)
    assert set(seen) == set(REGIMES)
    assert sum(seen.values()) == 360


class _Counter(Actor):
    """Counts what a BacktestEngine delivers; proves the data set is consumable."""

    def __init__(self) -> None:
        super().__init__()
        self.counts = {"quote": 0, "trade": 0, "bar": 0}

    def on_start(self) -> None:
        self.subscribe_quote_ticks(SIM_INSTRUMENT_ID)
        self.subscribe_trade_ticks(SIM_INSTRUMENT_ID)
        self.subscribe_bars(BAR_TYPE)

    def on_quote_tick(self, tick: QuoteTick) -> None:
        self.counts["quote"] += 1

    def on_trade_tick(self, tick: TradeTick) -> None:
        self.counts["trade"] += 1

    def on_bar(self, bar: Bar) -> None:
        self.counts["bar"] += 1


def test_backtest_engine_consumes_generated_data() -> None:
    minutes, ticks = 30, 4
    engine = BacktestEngine(
        BacktestEngineConfig(logging=LoggingConfig(bypass_logging=True), run_analysis=False)
    )
    try:
        engine.add_venue(
            SIM_INSTRUMENT_ID.venue,
            oms_type=OmsType.HEDGING,
            account_type=AccountType.MARGIN,
            base_currency=USDT,
            starting_balances=[Money(10_000, USDT)],
            fill_model=FillModel(prob_fill_on_limit=1.0, random_seed=42),
            fee_model=MakerTakerFeeModel(),
            bar_execution=False,
        )
        engine.add_instrument(make_btcusdt_perp())
        engine.add_data(generate_backtest_data(seed=3, minutes=minutes, ticks_per_minute=ticks))
        counter = _Counter()
        engine.add_actor(counter)
        engine.run()
        assert counter.counts == {
            "quote": minutes * ticks,
            "trade": minutes * ticks,
            "bar": minutes,
        }
    finally:
        engine.dispose()

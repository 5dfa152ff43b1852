"""Turn plain-number market samples into Nautilus data objects.

The live feed and the backtest generator both go through these functions, so a
paper session and a backtest with the same seed see identical prices, sizes, trade
ids and event times; only ``ts_init`` differs (wall clock live, event time in
backtests).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from nautilus_trader.core.data import Data
from nautilus_trader.model.data import (
    Bar,
    BarType,
    FundingRateUpdate,
    MarkPriceUpdate,
    QuoteTick,
    TradeTick,
)
from nautilus_trader.model.enums import AggressorSide
from nautilus_trader.model.identifiers import TradeId
from nautilus_trader.model.instruments import Instrument

from hedgegrid_ops.venues.sim.instrument import BAR_TYPE
from hedgegrid_ops.venues.sim.process import FUNDING_INTERVAL_MINUTES, MinuteSample, TickSample

_AGGRESSOR = {"BUY": AggressorSide.BUYER, "SELL": AggressorSide.SELLER}


def tick_to_data(
    tick: TickSample, instrument: Instrument, ts_init: int | None = None
) -> list[Data]:
    """The trade first, then the quote of the book it left behind.

    Order matters to Nautilus's L1 matching engine: a trade tick overwrites its
    top-of-book with the trade price and the trade's size on *both* sides until the
    next quote. With the quote last, an order arriving between ticks meets the
    quoted bid, ask and sizes, as on a venue, not a book made of the last print
    (which let a sell fill at the ask and capped fills at a trade's small size).
    The trade id is the event time, unique per tick and stable across runs.
    ``ts_init=None`` uses the event time (backtests).
    """
    init = tick.ts_ns if ts_init is None else ts_init
    iid = instrument.id
    return [
        TradeTick(
            instrument_id=iid,
            price=instrument.make_price(tick.trade_price),
            size=instrument.make_qty(tick.trade_size),
            aggressor_side=_AGGRESSOR[tick.aggressor],
            trade_id=TradeId(str(tick.ts_ns)),
            ts_event=tick.ts_ns,
            ts_init=init,
        ),
        QuoteTick(
            instrument_id=iid,
            bid_price=instrument.make_price(tick.bid),
            ask_price=instrument.make_price(tick.ask),
            bid_size=instrument.make_qty(tick.bid_size),
            ask_size=instrument.make_qty(tick.ask_size),
            ts_event=tick.ts_ns,
            ts_init=init,
        ),
    ]


def close_to_data(
    sample: MinuteSample,
    instrument: Instrument,
    ts_init: int | None = None,
    bar_type: BarType = BAR_TYPE,
) -> list[Data]:
    """The minute's closing bar, mark price and funding rate, all stamped at the close."""
    ts_event = sample.close_ns
    init = ts_event if ts_init is None else ts_init
    iid = instrument.id
    return [
        Bar(
            bar_type=bar_type,
            open=instrument.make_price(sample.open),
            high=instrument.make_price(sample.high),
            low=instrument.make_price(sample.low),
            close=instrument.make_price(sample.close),
            volume=instrument.make_qty(sample.volume),
            ts_event=ts_event,
            ts_init=init,
        ),
        MarkPriceUpdate(
            instrument_id=iid,
            value=instrument.make_price(sample.mark_price),
            ts_event=ts_event,
            ts_init=init,
        ),
        FundingRateUpdate(
            instrument_id=iid,
            rate=Decimal(f"{sample.funding_rate:.8f}"),
            ts_event=ts_event,
            ts_init=init,
            interval=FUNDING_INTERVAL_MINUTES,
            next_funding_ns=sample.next_funding_ns,
        ),
    ]


def ticks_to_data(
    ticks: Iterable[TickSample], instrument: Instrument, ts_init: int | None = None
) -> list[Data]:
    """Convert a batch of ticks, preserving order."""
    out: list[Data] = []
    for tick in ticks:
        out.extend(tick_to_data(tick, instrument, ts_init))
    return out


def sample_to_data(
    sample: MinuteSample, instrument: Instrument, ts_init: int | None = None
) -> list[Data]:
    """All objects for one minute in publication order: ticks, bar, mark, funding.

    ``ts_init=None`` stamps each object with its own event time, which is what a
    BacktestEngine expects; the live client passes the wall clock instead.
    """
    return [
        *ticks_to_data(sample.ticks, instrument, ts_init),
        *close_to_data(sample, instrument, ts_init),
    ]

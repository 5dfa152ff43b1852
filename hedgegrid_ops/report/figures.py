"""The figures of a trading run, computed from plain records by pure functions.

``run``'s summary and the ``backtest`` command both call :func:`compute_figures`,
so an operator reads the same numbers, defined the same way, in both places. No
Nautilus import here: the recorder turns Nautilus objects into these records.

Funding: neither Nautilus's Sandbox nor its BacktestEngine settles funding, so it is
applied here, at each funding time the market announced, as
``-rate x mark x (long qty - short qty)`` (longs pay shorts when the rate is
positive), with the rate and positions in force at that time. It is added to the
equity curve and to the net PnL, never to the venue balance.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

NS_PER_S = 1_000_000_000
SECONDS_PER_DAY = 86_400


@dataclass(frozen=True, slots=True)
class Sample:
    """The account once per bar (simulated time)."""

    ts_ns: int
    price: float
    balance: float
    realized_pnl: float
    unrealized_pnl: float
    long_qty: float
    short_qty: float
    regime: str


@dataclass(frozen=True, slots=True)
class FillRecord:
    """One fill as the venue reported it."""

    ts_ns: int
    client_order_id: str
    venue_order_id: str
    trade_id: str
    position_id: str
    side: str  # BUY / SELL
    price: float
    qty: float
    liquidity: str  # maker / taker
    commission: float
    commission_currency: str


@dataclass(frozen=True, slots=True)
class FundingEvent:
    """A funding settlement applied at ``ts_ns`` (positive ``payment`` = received)."""

    ts_ns: int
    rate: float
    mark: float
    long_qty: float
    short_qty: float
    payment: float


@dataclass(frozen=True, slots=True)
class RunFacts:
    """Counts the strategy keeps that are not in the samples or fills."""

    orders_submitted: int
    flattens: int
    kill_switch_trips: int | None  # None: this build has no kill switch counter


@dataclass(frozen=True)
class Figures:
    """What a run did, in the units an operator reads (USDT, %, minutes)."""

    period_start: str | None
    period_end: str | None
    days: float
    bars: int
    orders: int
    fills: int
    maker_fills: int
    taker_fills: int
    maker_ratio: float | None
    starting_balance: float
    realized_pnl: float
    unrealized_pnl: float
    fees: float
    funding: float
    funding_settlements: int
    funding_method: str
    net_pnl: float
    final_equity: float
    max_drawdown_usdt: float
    max_drawdown_pct: float
    return_pct: float | None  # None: no known starting balance
    return_per_day_pct: float | None
    regime_minutes: dict[str, int] = field(default_factory=dict)
    flattens: int = 0
    kill_switch_trips: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


FUNDING_METHOD = (
    "applied by the report at each funding time: -rate x mark x (long - short), with the "
    "market's announced rate; not booked in the venue balance"
)


def funding_payment(rate: float, mark: float, long_qty: float, short_qty: float) -> float:
    """What the hedge receives (positive) or pays (negative) at one funding time."""
    return -rate * mark * (long_qty - short_qty)


def settled_funding(
    samples: Sequence[Sample], funding: Sequence[FundingEvent]
) -> Iterator[tuple[Sample, float]]:
    """Each sample with the funding settled by its time (payments summed in order)."""
    settled = 0.0
    i = 0
    for s in samples:
        while i < len(funding) and funding[i].ts_ns <= s.ts_ns:
            settled += funding[i].payment
            i += 1
        yield s, settled


def equity_curve(samples: Sequence[Sample], funding: Sequence[FundingEvent]) -> list[float]:
    """Balance + unrealized PnL + funding settled so far, at each sample."""
    return [s.balance + s.unrealized_pnl + paid for s, paid in settled_funding(samples, funding)]


def drawdown_curve(equity: Sequence[float]) -> list[float]:
    """How far below its running peak the equity is at each point (<= 0, USDT)."""
    out: list[float] = []
    peak = float("-inf")
    for value in equity:
        peak = max(peak, value)
        out.append(value - peak)
    return out


class DrawdownTracker:
    """The largest peak-to-trough fall of a series seen one value at a time."""

    __slots__ = ("peak", "worst", "worst_pct")

    def __init__(self) -> None:
        self.peak = float("-inf")
        self.worst = 0.0
        self.worst_pct = 0.0

    def feed(self, value: float) -> None:
        self.peak = max(self.peak, value)
        fall = self.peak - value
        if fall > self.worst:
            self.worst = fall
        if self.peak > 0:
            self.worst_pct = max(self.worst_pct, 100.0 * fall / self.peak)


def max_drawdown(equity: Sequence[float]) -> tuple[float, float]:
    """Largest peak-to-trough fall: (USDT, % of the peak), both >= 0."""
    tracker = DrawdownTracker()
    for value in equity:
        tracker.feed(value)
    return tracker.worst, tracker.worst_pct


@dataclass
class SampleSummary:
    """Everything the figures need from the per-bar samples, kept without the samples.

    ``run`` can go on for days (10 bars a wall second at the default speed): keeping
    every sample grew its memory by about 230 bytes a bar for ever. Fed the samples in
    order, each with the funding settled by its time, this gives the same figures as
    the list did. ``starting_balance`` None (live: not configured) is taken from the
    first sample: its balance less the PnL realized by then.
    """

    starting_balance: float | None = None
    first: Sample | None = None
    last: Sample | None = None
    count: int = 0
    final_equity: float | None = None
    regimes: Counter[str] = field(default_factory=Counter)
    drawdown: DrawdownTracker = field(default_factory=DrawdownTracker)

    def add(self, sample: Sample, settled_funding: float) -> None:
        if self.first is None:
            self.first = sample
            if self.starting_balance is None:
                self.starting_balance = sample.balance - sample.realized_pnl
            self.drawdown.feed(self.starting_balance)
        equity = sample.balance + sample.unrealized_pnl + settled_funding
        self.drawdown.feed(equity)
        self.final_equity = equity
        self.last = sample
        self.count += 1
        self.regimes[sample.regime] += 1


@dataclass(frozen=True, slots=True)
class FillTally:
    """The fill figures of a run: how many fills, how many as maker, commissions paid."""

    fills: int
    maker: int
    fees: float


def tally_fills(fills: Iterable[FillRecord]) -> FillTally:
    fill_list = list(fills)
    maker = sum(f.liquidity == "maker" for f in fill_list)
    return FillTally(len(fill_list), maker, sum((f.commission for f in fill_list), 0.0))


def summarize_samples(
    samples: Sequence[Sample], funding: Sequence[FundingEvent], starting_balance: float | None
) -> SampleSummary:
    """A ``SampleSummary`` of a whole list of samples (funding applied by its time)."""
    summary = SampleSummary(starting_balance)
    for sample, paid in settled_funding(samples, funding):
        summary.add(sample, paid)
    return summary


def _iso(ts_ns: int) -> str:
    return datetime.fromtimestamp(ts_ns / NS_PER_S, UTC).isoformat().replace("+00:00", "Z")


def compute_figures(
    samples: Sequence[Sample],
    fills: Iterable[FillRecord],
    funding: Sequence[FundingEvent],
    facts: RunFacts,
    starting_balance: float,
    bar_ns: int = 60 * NS_PER_S,
) -> Figures:
    """Every summary figure of a run; each bar sample counts one bar of ``bar_ns``."""
    summary = summarize_samples(samples, funding, starting_balance)
    return figures_from_summary(summary, tally_fills(fills), funding, facts, bar_ns)


def figures_from_summary(
    summary: SampleSummary,
    fills: FillTally,
    funding: Sequence[FundingEvent],
    facts: RunFacts,
    bar_ns: int = 60 * NS_PER_S,
) -> Figures:
    """Every summary figure of a run from its ``SampleSummary`` (see ``compute_figures``)."""
    starting_balance = summary.starting_balance if summary.starting_balance is not None else 0.0
    maker = fills.maker
    taker = fills.fills - maker
    funding_total = sum((f.payment for f in funding), 0.0)
    first, last = summary.first, summary.last
    realized = last.realized_pnl if last else 0.0
    unrealized = last.unrealized_pnl if last else 0.0
    final_equity = summary.final_equity if summary.final_equity is not None else starting_balance
    days = summary.count * bar_ns / NS_PER_S / SECONDS_PER_DAY
    return_pct = (
        100.0 * (final_equity - starting_balance) / starting_balance
        if starting_balance > 0
        else None
    )
    return Figures(
        period_start=_iso(first.ts_ns - bar_ns) if first else None,
        period_end=_iso(last.ts_ns) if last else None,
        days=days,
        bars=summary.count,
        orders=facts.orders_submitted,
        fills=fills.fills,
        maker_fills=maker,
        taker_fills=taker,
        maker_ratio=maker / fills.fills if fills.fills else None,
        starting_balance=starting_balance,
        realized_pnl=realized,
        unrealized_pnl=unrealized,
        fees=fills.fees,
        funding=funding_total,
        funding_settlements=len(funding),
        funding_method=FUNDING_METHOD,
        net_pnl=realized + unrealized + funding_total,
        final_equity=final_equity,
        max_drawdown_usdt=summary.drawdown.worst,
        max_drawdown_pct=summary.drawdown.worst_pct,
        return_pct=return_pct,
        return_per_day_pct=return_pct / days if days > 0 and return_pct is not None else None,
        regime_minutes=dict(summary.regimes),
        flattens=facts.flattens,
        kill_switch_trips=facts.kill_switch_trips,
    )

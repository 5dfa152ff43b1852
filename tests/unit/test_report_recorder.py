"""``run``'s recorder keeps no per-bar list, and its figures equal the full list's.

``run`` can last for days, so its recorder keeps only a running summary of the bar
samples; ``backtest`` keeps every sample for its charts. Fed the same snapshots
(several per bar, bars with and without funding times, a drawdown and a recovery),
both must give exactly the same figures.
"""

from __future__ import annotations

import random

import pytest

from hedgegrid_ops.report.figures import (
    FillTally,
    RunFacts,
    compute_figures,
    figures_from_summary,
    tally_fills,
)
from hedgegrid_ops.report.recorder import RunRecorder
from hedgegrid_ops.snapshot import Counters, SideState
from tests.support.inprocess import make_snapshot

BAR_S = 60.0
FUNDING_EVERY_S = 8 * 3600.0
T0 = 1_704_067_200.0  # 2024-01-01T00:00:00Z


def _snapshots(seed: int, bars: int) -> list:
    rng = random.Random(seed)
    out = []
    balance, realized, price = 10_000.0, 0.0, 60_000.0
    regimes = ("sideways", "trend_up", "trend_down")
    for bar in range(bars):
        bar_time = T0 + (bar + 1) * BAR_S
        next_funding = (bar_time // FUNDING_EVERY_S + 1) * FUNDING_EVERY_S
        for _ in range(rng.randint(1, 3)):  # fills between bars update the bar's sample
            price *= 1 + rng.gauss(0, 0.002)
            pnl = rng.gauss(0, 3.0)
            realized += pnl
            balance += pnl
            long_qty, short_qty = rng.randint(0, 40) / 1000, rng.randint(0, 40) / 1000
            out.append(
                make_snapshot(
                    last_bar_event_time=bar_time,
                    next_funding_time=next_funding,
                    funding_rate=rng.uniform(-0.0005, 0.0005),
                    mid_price=price,
                    balance_usdt=balance,
                    realized_pnl=realized,
                    unrealized_pnl=rng.gauss(0, 20.0),
                    regime=regimes[(bar // 50) % 3],
                    long=SideState(long_qty, price, long_qty * price, 0.0),
                    short=SideState(short_qty, price, short_qty * price, 0.0),
                )
            )
    return out


@pytest.mark.parametrize("starting_balance", [10_000.0, None])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_running_summary_gives_the_figures_of_the_whole_list(
    seed: int, starting_balance: float | None
) -> None:
    kept = RunRecorder(keep_samples=True)
    summarized = RunRecorder(keep_samples=False, starting_balance=starting_balance)
    for snap in _snapshots(seed, bars=1500):  # 25 simulated hours: three funding times
        kept(snap)
        summarized(snap)
    assert summarized.samples == []  # nothing per bar is kept
    assert len(kept.funding) >= 3 and summarized.funding == kept.funding
    facts = RunFacts(orders_submitted=5, flattens=1, kill_switch_trips=0)
    first = kept.samples[0]
    balance = (
        starting_balance if starting_balance is not None else first.balance - first.realized_pnl
    )
    expected = compute_figures(kept.samples, [], kept.funding, facts, balance)
    got = figures_from_summary(summarized.summary(), tally_fills([]), summarized.funding, facts)
    assert got == expected
    assert got.bars == 1500 and got.max_drawdown_usdt > 0


def test_a_summary_asked_mid_bar_counts_the_current_bar_once() -> None:
    recorder = RunRecorder(keep_samples=False, starting_balance=10_000.0)
    snaps = _snapshots(7, bars=3)
    for snap in snaps:
        recorder(snap)
    assert recorder.summary().count == 3
    assert recorder.summary().count == 3  # asking does not commit the current bar
    recorder(snaps[-1])  # one more snapshot in the same bar
    assert recorder.summary().count == 3


def test_run_fills_come_from_the_counters_not_from_the_purged_cache() -> None:
    """A long run's cache has lost the fills of purged orders; the counters have them all."""
    recorder = RunRecorder(keep_samples=False, starting_balance=10_000.0)
    assert recorder.fill_tally() == FillTally(0, 0, 0.0)
    counters = Counters(
        fills_buy_maker=40, fills_sell_maker=35, fills_buy_taker=3, fills_sell_taker=2,
        fees_paid_usdt=12.5,
    )  # fmt: skip
    recorder(make_snapshot(last_bar_event_time=T0 + BAR_S, counters=counters))
    tally = recorder.fill_tally()
    assert tally == FillTally(fills=80, maker=75, fees=12.5)
    facts = RunFacts(orders_submitted=90, flattens=0, kill_switch_trips=0)
    figures = figures_from_summary(recorder.summary(), tally, recorder.funding, facts)
    assert (figures.fills, figures.maker_fills, figures.taker_fills) == (80, 75, 5)
    assert figures.fees == 12.5 and figures.maker_ratio == 75 / 80

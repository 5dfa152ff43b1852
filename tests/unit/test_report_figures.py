"""The report's figures: pure functions checked on numbers worked out by hand."""

from __future__ import annotations

import math

import pytest

from hedgegrid_ops.report.figures import (
    FillRecord,
    FundingEvent,
    RunFacts,
    Sample,
    compute_figures,
    drawdown_curve,
    equity_curve,
    funding_payment,
    max_drawdown,
)

MIN = 60_000_000_000
DAY0 = 1_704_067_200_000_000_000  # 2024-01-01T00:00:00Z


def _sample(i: int, balance: float, unrealized: float = 0.0, regime: str = "sideways") -> Sample:
    return Sample(
        ts_ns=DAY0 + (i + 1) * MIN,
        price=60_000.0,
        balance=balance,
        realized_pnl=balance - 10_000.0,
        unrealized_pnl=unrealized,
        long_qty=0.01,
        short_qty=0.03,
        regime=regime,
    )


def _fill(i: int, liquidity: str, commission: float) -> FillRecord:
    return FillRecord(
        ts_ns=DAY0 + i * MIN,
        client_order_id=f"O-{i}",
        venue_order_id=f"V-{i}",
        trade_id=f"T-{i}",
        position_id="BTCUSDT-PERP.BINANCE-LONG",
        side="BUY",
        price=60_000.0,
        qty=0.002,
        liquidity=liquidity,
        commission=commission,
        commission_currency="USDT",
    )


def test_max_drawdown_is_the_largest_fall_from_a_running_peak() -> None:
    # peaks 120 then 130; falls 30 (120 -> 90, 25%) and 30 (130 -> 100, 23.1%)
    assert max_drawdown([100.0, 120.0, 90.0, 130.0, 100.0]) == (30.0, 25.0)
    assert max_drawdown([1.0, 2.0, 3.0]) == (0.0, 0.0)
    assert drawdown_curve([100.0, 120.0, 90.0, 130.0]) == [0.0, 0.0, -30.0, 0.0]


@pytest.mark.parametrize(
    ("rate", "long_qty", "short_qty", "expected"),
    [
        (0.0001, 0.1, 0.0, -0.6),  # longs pay when the rate is positive
        (0.0001, 0.0, 0.1, 0.6),  # shorts receive it
        (-0.0002, 0.1, 0.0, 1.2),  # a negative rate pays the longs
        (0.0001, 0.1, 0.1, 0.0),  # a balanced hedge pays nothing
    ],
)
def test_funding_payment_sign(rate: float, long_qty: float, short_qty: float, expected: float):
    assert math.isclose(funding_payment(rate, 60_000.0, long_qty, short_qty), expected)


def test_equity_adds_funding_from_its_settlement_time_on() -> None:
    samples = [_sample(0, 10_000.0, 1.0), _sample(1, 10_000.0, 2.0), _sample(2, 10_010.0, 0.0)]
    settle = FundingEvent(samples[1].ts_ns, 0.0001, 60_000.0, 0.0, 0.1, 0.6)
    assert equity_curve(samples, [settle]) == [10_001.0, 10_002.6, 10_010.6]


def test_compute_figures_counts_and_rates() -> None:
    samples = [
        _sample(0, 10_000.0, regime="sideways"),
        _sample(1, 9_950.0, regime="trend_up"),  # 50 below the start
        _sample(2, 10_100.0, 4.0, regime="trend_up"),
    ]
    fills = [_fill(0, "maker", 0.024), _fill(1, "maker", 0.024), _fill(2, "taker", 0.06)]
    settle = FundingEvent(samples[2].ts_ns, 0.0001, 60_000.0, 0.01, 0.03, 0.12)
    facts = RunFacts(orders_submitted=7, flattens=1, kill_switch_trips=None)
    fig = compute_figures(samples, fills, [settle], facts, starting_balance=10_000.0)

    assert (fig.bars, fig.orders, fig.fills, fig.maker_fills, fig.taker_fills) == (3, 7, 3, 2, 1)
    assert math.isclose(fig.maker_ratio or 0, 2 / 3)
    assert math.isclose(fig.fees, 0.108)
    assert (fig.realized_pnl, fig.unrealized_pnl) == (100.0, 4.0)
    assert math.isclose(fig.funding, 0.12) and fig.funding_settlements == 1
    assert math.isclose(fig.net_pnl, 104.12)
    assert math.isclose(fig.final_equity, 10_104.12)
    assert math.isclose(fig.max_drawdown_usdt, 50.0)
    assert math.isclose(fig.max_drawdown_pct, 0.5)
    days = 3 / 1440
    assert math.isclose(fig.days, days)
    assert math.isclose(fig.return_pct, 1.0412)
    assert math.isclose(fig.return_per_day_pct or 0, 1.0412 / days)
    assert fig.regime_minutes == {"sideways": 1, "trend_up": 2}
    assert fig.period_start == "2024-01-01T00:00:00Z"
    assert fig.period_end == "2024-01-01T00:03:00Z"
    assert (fig.flattens, fig.kill_switch_trips) == (1, None)


def test_an_empty_run_has_no_ratios_to_report() -> None:
    facts = RunFacts(orders_submitted=0, flattens=0, kill_switch_trips=0)
    fig = compute_figures([], [], [], facts, starting_balance=10_000.0)
    assert fig.maker_ratio is None and fig.return_per_day_pct is None
    assert (fig.fills, fig.bars, fig.final_equity, fig.max_drawdown_usdt) == (0, 0, 10_000.0, 0.0)

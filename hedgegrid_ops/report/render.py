"""Turn a run's figures and records into the stdout summary, report.json and report.html.

The HTML page is self-contained (charts are matplotlib PNGs embedded as data URIs,
no script, no network), so it opens offline from a CI artifact or a mail.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from hedgegrid_ops.report.figures import (
    NS_PER_S,
    Figures,
    FillRecord,
    FundingEvent,
    Sample,
    drawdown_curve,
    equity_curve,
)


def _pct(x: float | None) -> str:
    return f"{x:+.3f}%" if x is not None else "n/a"


def _money(x: float) -> str:
    return f"{x:+,.2f} USDT"


def format_summary(fig: Figures, source: str) -> str:
    """The human-readable summary printed at the end of a backtest."""
    regimes = ", ".join(f"{k} {v} min" for k, v in sorted(fig.regime_minutes.items())) or "none"
    ratio = f"{100 * fig.maker_ratio:.1f}%" if fig.maker_ratio is not None else "n/a (no fills)"
    per_day = f"{fig.return_per_day_pct:+.3f}%" if fig.return_per_day_pct is not None else "n/a"
    trips = (
        "n/a (no kill switch in this build)"
        if fig.kill_switch_trips is None
        else str(fig.kill_switch_trips)
    )
    lines = [
        f"market:        {source}",
        f"period:        {fig.period_start} .. {fig.period_end} ({fig.days:.2f} days)",
        f"bars:          {fig.bars}",
        f"orders:        {fig.orders}",
        f"fills:         {fig.fills} ({fig.maker_fills} maker, {fig.taker_fills} taker)",
        f"maker ratio:   {ratio}",
        f"realized PnL:  {_money(fig.realized_pnl)} (fees included)",
        f"unrealized:    {_money(fig.unrealized_pnl)}",
        f"fees:          {fig.fees:,.2f} USDT",
        f"funding:       {_money(fig.funding)} over {fig.funding_settlements} settlements "
        f"({fig.funding_method})",
        f"net PnL:       {_money(fig.net_pnl)}",
        f"max drawdown:  {fig.max_drawdown_usdt:,.2f} USDT ({fig.max_drawdown_pct:.3f}%)",
        f"return:        {_pct(fig.return_pct)} ({per_day} per day)",
        f"regimes:       {regimes}",
        f"flattens:      {fig.flattens}",
        f"kill switch:   {trips}",
    ]
    return "\n".join(lines)


def report_dict(
    fig: Figures, source: str, fills: Sequence[FillRecord], funding: Sequence[FundingEvent]
) -> dict[str, Any]:
    """report.json: the figures, plus every fill and funding settlement behind them."""
    return {
        "market": source,
        "figures": fig.to_dict(),
        "funding_settlements": [asdict(f) for f in funding],
        "fills": [asdict(f) for f in fills],
    }


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.write_bytes(orjson.dumps(payload, option=orjson.OPT_INDENT_2) + b"\n")


def _times(ts: Sequence[int]) -> Any:
    """Matplotlib date numbers (an array of floats) for nanosecond timestamps."""
    from matplotlib.dates import date2num

    return date2num([datetime.fromtimestamp(t / NS_PER_S, UTC) for t in ts])


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def render_charts(
    samples: Sequence[Sample], fills: Sequence[FillRecord], funding: Sequence[FundingEvent]
) -> dict[str, str]:
    """Four charts as base64 PNGs: equity, legs, price with fills, drawdown."""
    import matplotlib

    matplotlib.use("Agg")  # no display: render to memory only
    import matplotlib.pyplot as plt

    times = _times([s.ts_ns for s in samples])
    equity = equity_curve(samples, funding)
    charts: dict[str, str] = {}

    def finish(key: str, fig: Any, ax: Any, title: str, legend: bool = False) -> None:
        ax.set_title(title)
        ax.xaxis_date()
        if legend:
            ax.legend(loc="upper left")
        ax.grid(alpha=0.3)
        charts[key] = _png(fig)
        plt.close(fig)

    try:
        fig, ax = plt.subplots(figsize=(10, 3))
        ax.plot(times, equity, color="tab:blue", linewidth=1)
        finish("equity", fig, ax, "Equity (balance + unrealized + funding), USDT")

        fig, ax = plt.subplots(figsize=(10, 3))
        ax.step(times, [s.long_qty for s in samples], where="post", label="LONG", color="green")
        ax.step(times, [s.short_qty for s in samples], where="post", label="SHORT", color="red")
        finish("positions", fig, ax, "Position per leg, BTC", legend=True)

        fig, ax = plt.subplots(figsize=(10, 4))
        ax.plot(times, [s.price for s in samples], color="black", linewidth=0.8, label="mid")
        for side, color, marker in (("BUY", "green", "^"), ("SELL", "red", "v")):
            mine = [f for f in fills if f.side == side]
            ax.scatter(
                _times([f.ts_ns for f in mine]),
                [f.price for f in mine],
                s=12,
                color=color,
                marker=marker,
                label=f"{side.lower()} fills",
            )
        finish("price", fig, ax, "Price with fills", legend=True)

        fig, ax = plt.subplots(figsize=(10, 2.5))
        ax.fill_between(times, drawdown_curve(equity), 0, color="tab:red", alpha=0.4, step="post")
        finish("drawdown", fig, ax, "Drawdown from the running peak, USDT")
    finally:
        plt.close("all")
    return charts


def write_html(path: Path, fig: Figures, source: str, summary: str, charts: dict[str, str]) -> None:
    """report.html: the summary and the charts, one offline file."""
    images = "\n".join(
        f'<h2>{html.escape(title)}</h2><img alt="{html.escape(title)}" '
        f'src="data:image/png;base64,{charts[key]}">'
        for key, title in (
            ("equity", "Equity curve"),
            ("positions", "Position per leg"),
            ("price", "Price with fills"),
            ("drawdown", "Drawdown"),
        )
        if key in charts
    )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>hedgegrid backtest: {html.escape(source)}</title>
<style>body{{font-family:sans-serif;max-width:1060px;margin:2em auto;color:#222}}
pre{{background:#f5f5f5;padding:1em;overflow-x:auto}}img{{max-width:100%}}</style>
</head><body>
<h1>HedgeGridV1 backtest</h1>
<pre>{html.escape(summary)}</pre>
{images}
</body></html>
"""
    path.write_text(page, encoding="utf-8")

"""``python -m hedgegrid_ops backtest``: the real strategy on Nautilus's BacktestEngine.

Runs over replayed Binance kline files (``--replay``, plain or zipped, several in
order) or ``--minutes`` of the seeded simulated market, then prints a summary and
writes ``report.json`` and ``report.html`` to ``--out``. Bad flags, configs or
files end the program with one line on stderr and exit 2, before anything runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import msgspec

EXIT_USAGE = 2
PROGRESS_MIN_MINUTES = 2 * 1440  # show a progress bar from two simulated days on


def add_backtest_command(
    subparsers: argparse._SubParsersAction, default_strategy: Path, default_venue: Path
) -> None:
    """Register ``backtest`` with the same default config files as ``run``."""
    bt = subparsers.add_parser(
        "backtest",
        help="backtest HedgeGridV1 on replayed klines or the simulated market, with a report",
        description=(
            "Run HedgeGridV1 on NautilusTrader's BacktestEngine as fast as it allows, over "
            "Binance kline CSVs (--replay, the public data-dump format, plain or .zip) or "
            "the seeded simulated market (--minutes, --seed). Prints a summary and writes "
            "report.json and report.html (charts, viewable offline) to --out."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    bt.add_argument("--strategy-config", type=Path, default=default_strategy)
    bt.add_argument("--venue-config", type=Path, default=default_venue)
    bt.add_argument(
        "--replay",
        type=Path,
        nargs="+",
        default=None,
        metavar="FILE",
        help="Binance 1-minute kline files replayed in the given order",
    )
    bt.add_argument(
        "--minutes",
        type=int,
        default=None,
        help="simulated minutes to run (simulated market; default 1440 without --replay)",
    )
    bt.add_argument("--seed", type=int, default=None, help="market seed (overrides the config)")
    bt.add_argument("--out", type=Path, default=Path("backtest-report"), help="report directory")
    bt.add_argument("--no-progress", action="store_true", help="no progress bar, even on long runs")


def _fail(message: str) -> int:
    sys.stderr.write(f"error: {message}\n")
    return EXIT_USAGE


def cmd_backtest(args: argparse.Namespace) -> int:
    from hedgegrid_ops.config import ConfigError, load_strategy_config, load_venue_config
    from hedgegrid_ops.venues.sim.listing import unprovided_instrument
    from hedgegrid_ops.venues.sim.replay import ReplayError, load_kline_files

    if args.replay and args.minutes is not None:
        return _fail("--minutes and --replay exclude each other (a replay runs to its end)")
    if args.minutes is not None and args.minutes <= 0:
        return _fail("--minutes must be > 0")
    if args.seed is not None and args.seed < 0:
        return _fail("--seed must be >= 0")
    try:
        strategy = load_strategy_config(args.strategy_config)
        venue = load_venue_config(args.venue_config)
    except ConfigError as exc:
        return _fail(str(exc))
    if (problem := unprovided_instrument(strategy.instrument_id)) is not None:
        return _fail(problem)
    if args.seed is not None:
        venue = msgspec.structs.replace(
            venue, market=msgspec.structs.replace(venue.market, seed=args.seed)
        )
    klines = None
    if args.replay:
        try:
            klines = load_kline_files(args.replay)
        except ReplayError as exc:
            return _fail(f"--replay: {exc}")
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return _fail(f"--out {args.out}: {exc.strerror or exc}")
    minutes = None if klines else (args.minutes or 1440)
    source = (
        f"replay of {len(klines)} klines from {', '.join(str(p) for p in args.replay)}"
        if klines
        else f"simulated market, seed {venue.market.seed}, {minutes} minutes"
    )
    return _run(strategy, venue, minutes, klines, source, args)


def _run(
    strategy: Any, venue: Any, minutes: int | None, klines: Any, source: str, args: Any
) -> int:
    from hedgegrid_ops.backtest import run_backtest
    from hedgegrid_ops.logs import configure_logging, shutdown_logging
    from hedgegrid_ops.report.figures import compute_figures
    from hedgegrid_ops.report.recorder import RunRecorder, fills_from_cache
    from hedgegrid_ops.report.render import (
        format_summary,
        render_charts,
        report_dict,
        write_html,
        write_json,
    )
    from hedgegrid_ops.snapshot import SnapshotStore

    total = len(klines) if klines else int(minutes or 0)
    bar = None
    if total >= PROGRESS_MIN_MINUTES and not args.no_progress:
        from tqdm import tqdm  # type: ignore[import-untyped]  # comes with nautilus_trader

        bar = tqdm(total=total, unit="min", desc="backtest", file=sys.stderr)

    def progress(done: int, _total: int) -> None:
        if bar is not None:
            bar.update(done - bar.n)

    store = SnapshotStore()
    recorder = RunRecorder()
    store.subscribe(recorder)
    # The strategy's JSON log lines go to <out>/logs/trading.log; stdout keeps the summary.
    configure_logging(args.out / "logs", stdout=False)
    try:
        run = run_backtest(
            strategy, venue, minutes=minutes, store=store, klines=klines, progress=progress
        )
    finally:
        shutdown_logging()
    try:
        if bar is not None:
            bar.close()
        fills = fills_from_cache(run.engine.cache, run.strategy.id)
        figures = compute_figures(
            recorder.samples, fills, recorder.funding, recorder.facts(), run.starting_balance
        )
    finally:
        run.engine.dispose()
    if klines:
        source += " (klines carry no funding: a constant +1 bp rate every 8 h is applied)"
    summary = format_summary(figures, source)
    write_json(args.out / "report.json", report_dict(figures, source, fills, recorder.funding))
    charts = render_charts(recorder.samples, fills, recorder.funding)
    write_html(args.out / "report.html", figures, source, summary, charts)
    sys.stdout.write(summary + "\n")
    sys.stdout.write(f"report:        {args.out / 'report.html'} and report.json\n")
    sys.stdout.flush()
    return 0

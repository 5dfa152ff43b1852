"""Command line: ``run`` starts paper trading; the other commands talk to a running service.

Bad flags and bad configs end the program before anything trades, with one line
on stderr naming the problem and exit code 2.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import msgspec
import orjson

from hedgegrid_ops import __version__
from hedgegrid_ops.config import (
    MAX_SEED,
    AnyVenueConfig,
    BinanceVenueConfig,
    ConfigError,
    StrategyConfig,
    VenueConfig,
    load_any_venue_config,
    load_strategy_config,
)
from hedgegrid_ops.history.store import DEFAULT_FILL_HISTORY_DAYS
from hedgegrid_ops.ops.settings import (
    DEFAULT_MAX_BAR_AGE,
    NotifySettings,
    OpsSettings,
    check_port,
)
from hedgegrid_ops.venues.sim.listing import unprovided_instrument

if TYPE_CHECKING:
    from hedgegrid_ops.state import SavedState, StateStore

EXIT_USAGE = 2
DEFAULT_STRATEGY = Path("configs/strategies/hedge_grid_v1.yaml")
DEFAULT_VENUE = Path("configs/venues/sim.yaml")


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad flag as a single line and exits 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _port(value: str) -> int:
    """A port flag: the text must be an integer, the rest is ``settings.check_port``."""
    try:
        return check_port(int(value))
    except ValueError as exc:
        detail = str(exc) if value.strip().lstrip("-").isdigit() else "port must be an integer"
        raise argparse.ArgumentTypeError(f"invalid port {value!r}: {detail}") from None


def _int_in(kind: str, low: int, high: int) -> Callable[[str], int]:
    """An argparse type: an integer in ``low..high``, else one line naming the problem."""

    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid {kind} {value!r}: not an integer") from None
        if not low <= number <= high:
            raise argparse.ArgumentTypeError(f"invalid {kind} {number}: must be {low}..{high}")
        return number

    return parse


_budget = _int_in("count", 1, 1_000_000)
_backups = _int_in("count", 0, 1000)
_fill_history_days = _int_in("number of days", 0, 36_500)


def _positive(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number {value!r}") from None
    if not number > 0 or number != number or number == float("inf"):
        raise argparse.ArgumentTypeError(f"{value!r} must be a finite number > 0")
    return number


def _add_run(subparsers: argparse._SubParsersAction) -> None:
    run = subparsers.add_parser(
        "run",
        help="run paper trading on the built-in simulated market",
        description=(
            "Run HedgeGridV1 on a NautilusTrader node. Paper mode (the default) trades the "
            "embedded offline market with Nautilus's Sandbox execution: no keys, no network."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    run.add_argument(
        "--strategy-config",
        type=Path,
        default=DEFAULT_STRATEGY,
        help="strategy YAML (grid, exits, regime, funding, throttle)",
    )
    run.add_argument(
        "--venue-config",
        type=Path,
        default=DEFAULT_VENUE,
        help="venue YAML: configs/venues/sim.yaml (paper) or configs/venues/binance_*.yaml (live)",
    )
    run.add_argument(
        "--mode",
        choices=("paper", "live"),
        default="paper",
        help="paper trades the simulated market; live trades Binance USDT-M futures through "
        "NautilusTrader's Binance adapter (needs a kind: binance --venue-config)",
    )
    run.add_argument(
        "--confirm-live",
        action="store_true",
        help="required to start live mode on Binance mainnet (real money)",
    )
    run.add_argument(
        "--duration",
        type=_positive,
        default=None,
        help="stop after this many wall seconds (default: until Ctrl-C / SIGTERM)",
    )
    run.add_argument(
        "--speed",
        type=_positive,
        default=None,
        help="simulated minutes per wall second (overrides the venue config)",
    )
    run.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seed of the simulated market (overrides the venue config)",
    )
    run.add_argument(
        "--replay",
        type=Path,
        default=None,
        help="replay a Binance kline CSV (public data dump format) instead of simulating",
    )
    run.add_argument(
        "--hold-after-replay",
        action="store_true",
        help="when the --replay file ends, keep the node and the API up (for inspection) "
        "until Ctrl-C / SIGTERM instead of stopping with the summary",
    )
    run.add_argument(
        "--purge-interval",
        type=_positive,
        default=60.0,
        help="closed orders, closed positions and account events older than this many "
        "seconds are dropped from memory (a second's worth at a time; one cache_purged "
        "log line per interval)",
    )
    run.add_argument(
        "--log-dir",
        type=Path,
        default=Path("logs"),
        help="directory for trading.log, api_access.log, audit.log and Nautilus's log",
    )
    run.add_argument(
        "--log-max-mb",
        type=_budget,
        default=50,
        metavar="MB",
        help="rotate each log file when it reaches this size (trading.log -> trading.log.1 ...)",
    )
    run.add_argument(
        "--log-backups",
        type=_backups,
        default=5,
        metavar="N",
        help="rotated files kept per log (0: truncate instead of keeping any)",
    )
    run.add_argument(
        "--log-level",
        type=str.upper,
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        default="INFO",
        help="lowest level written to stdout and trading.log (audit and access lines always)",
    )
    run.add_argument(
        "--state-dir",
        type=Path,
        default=Path(os.environ.get("HEDGEGRID_STATE_DIR") or "state"),
        help="directory of the state that survives restarts (trading state, throttle, "
        "kill-switch baselines, audit trail, fill history); env HEDGEGRID_STATE_DIR",
    )
    run.add_argument(
        "--fill-history-days",
        type=_fill_history_days,
        default=DEFAULT_FILL_HISTORY_DAYS,
        metavar="DAYS",
        help="GET /fills keeps the newest fill's day and this many days before it; older "
        "fills are folded into per-day totals, which GET /pnl/daily keeps for ever "
        "(0: keep every fill)",
    )
    ops = run.add_argument_group("operations layer (HTTP control, /metrics, /health)")
    ops.add_argument(
        "--enable-ops",
        action="store_true",
        help="serve the control API, /metrics and /health on the node's event loop",
    )
    ops.add_argument("--host", default="127.0.0.1", help="address the listeners bind to")
    ops.add_argument(
        "--api-port",
        type=_port,
        default=8080,
        help="control API port (also serves /metrics and /health); 0 = any free port",
    )
    ops.add_argument(
        "--prometheus-port",
        type=_port,
        default=9090,
        help="extra listener serving only /metrics and /health; 0 turns it off",
    )
    ops.add_argument(
        "--api-key",
        default=None,
        help="require this X-API-Key on control routes (prefer the HEDGEGRID_API_KEY "
        "environment variable: flags are visible in ps)",
    )
    ops.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="also accept this name in the Host header (IP addresses and localhost always "
        "are; anything else is refused to defeat DNS rebinding); repeatable",
    )
    ops.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="let browser pages from this origin (e.g. https://ops.example) call the API; "
        "none by default; repeatable",
    )
    ops.add_argument(
        "--metrics-require-key",
        action="store_true",
        help="require the API key on /metrics too (it exposes balance, equity and PnL); "
        "Prometheus sends it with `authorization: {credentials: KEY}`",
    )
    ops.add_argument(
        "--post-budget",
        type=_budget,
        default=OpsSettings.posts_per_minute,
        metavar="N",
        help="control requests (POST) each client may send per minute before 429 (default 120)",
    )
    ops.add_argument(
        "--auth-failures-per-minute",
        type=_budget,
        default=30,
        metavar="N",
        help="per-client budget of wrong API keys; past it every request answers 429",
    )
    ops.add_argument(
        "--max-bar-age",
        type=_positive,
        default=DEFAULT_MAX_BAR_AGE,
        help="/health reports degraded when no bar was processed for this many seconds",
    )
    notify = run.add_argument_group("webhook notifications (need --enable-ops)")
    notify.add_argument(
        "--notify-url",
        default=None,
        metavar="URL",
        help="post kill-switch trips, flattens and halts to this Slack/Discord-compatible "
        "webhook (prefer the HEDGEGRID_NOTIFY_URL environment variable: the URL holds a "
        "secret and flags are visible in ps)",
    )
    notify.add_argument(
        "--notify-timeout",
        type=_positive,
        default=NotifySettings.timeout,
        metavar="SECONDS",
        help="time limit of one webhook POST (a failed one is retried 3 times)",
    )
    notify.add_argument(
        "--notify-name",
        default=None,
        metavar="NAME",
        help="which instance speaks, at the start of every message (default: the host name)",
    )


def build_parser() -> argparse.ArgumentParser:
    from hedgegrid_ops.backtest_cli import add_backtest_command
    from hedgegrid_ops.client_cli import add_client_commands

    parser = OneLineParser(
        prog="python -m hedgegrid_ops",
        description="hedgegrid_ops: hedge-mode grid trading on NautilusTrader with an ops layer.",
    )
    parser.add_argument("--version", action="version", version=f"hedgegrid_ops {__version__}")
    subparsers = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=OneLineParser
    )
    _add_run(subparsers)
    from hedgegrid_ops.venues.binance_local.cli import add_exchange_command

    add_exchange_command(subparsers, _port, _positive)
    add_backtest_command(subparsers, DEFAULT_STRATEGY, DEFAULT_VENUE)
    add_client_commands(subparsers)
    return parser


def _apply_market_overrides(
    venue: VenueConfig, args: argparse.Namespace, path: Path
) -> VenueConfig:
    overrides = {k: v for k, v in (("speed", args.speed), ("seed", args.seed)) if v is not None}
    if not overrides:
        return venue
    raw = msgspec.to_builtins(venue)
    raw["market"].update(overrides)
    try:
        return msgspec.convert(raw, VenueConfig, strict=True)
    except msgspec.ValidationError as exc:
        flag = next(iter(f"--{k}" for k in overrides if f"market.{k}" in str(exc)), "flag")
        raise ConfigError(f"{flag}: {str(exc).split(' - at ')[0]}") from None


def _ops_settings(args: argparse.Namespace, instrument_id: str) -> OpsSettings:
    """The ops settings from the flags; ``ValueError`` names what is wrong (exit 2)."""
    key = args.api_key if args.api_key is not None else os.environ.get("HEDGEGRID_API_KEY")
    if key is not None and not key.strip():
        source = "--api-key" if args.api_key is not None else "HEDGEGRID_API_KEY"
        raise ValueError(f"{source} is empty; set a key of at least 32 characters or unset it")
    if args.mode == "live" and key is None:
        raise ValueError("live mode with --enable-ops requires an API key (HEDGEGRID_API_KEY)")
    return OpsSettings(
        notify=_notify_settings(args),
        host=args.host,
        api_port=args.api_port,
        prometheus_port=args.prometheus_port,
        api_key=key,
        max_bar_age=args.max_bar_age,
        instrument_id=instrument_id,
        allowed_hosts=tuple(args.allowed_host),
        cors_origins=tuple(args.cors_origin),
        metrics_require_key=args.metrics_require_key,
        posts_per_minute=args.post_budget,
        auth_failures_per_minute=args.auth_failures_per_minute,
    )


def _notify_url(args: argparse.Namespace) -> tuple[str, str] | None:
    """The webhook URL and where it came from (flag or environment), or None."""
    if args.notify_url is not None:
        return args.notify_url, "--notify-url"
    url = os.environ.get("HEDGEGRID_NOTIFY_URL")
    return (url, "HEDGEGRID_NOTIFY_URL") if url is not None else None


def _notify_settings(args: argparse.Namespace) -> NotifySettings | None:
    """The webhook settings from the flags; ``ValueError`` names what is wrong (exit 2),
    never repeating the URL (it carries the receiver's secret)."""
    given = _notify_url(args)
    if given is None:
        return None
    url, source = given
    try:
        return NotifySettings(
            url=url,
            timeout=args.notify_timeout,
            **({"name": args.notify_name} if args.notify_name is not None else {}),
        )
    except ValueError as exc:
        raise ValueError(f"{source}: {exc}") from None


def _check_notify_flags(args: argparse.Namespace) -> str | None:
    """Notification flags without the ops layer would be silently ignored: say so."""
    if args.enable_ops:
        return None
    given = _notify_url(args)
    if given is not None:
        return f"{given[1]} needs --enable-ops (the notifier runs in the ops layer)"
    if args.notify_name is not None:
        return "--notify-name needs --notify-url and --enable-ops"
    return None


def _fail(message: str) -> int:
    sys.stderr.write(f"error: {message}\n")
    return EXIT_USAGE


def _check_live(
    args: argparse.Namespace, venue: BinanceVenueConfig, instrument_id: str
) -> str | None:
    """Live-mode rules, checked before anything connects; the first broken one, or None."""
    from hedgegrid_ops.venues.binance_live.credentials import MissingCredentials, load_credentials

    for flag, value in (("--speed", args.speed), ("--seed", args.seed), ("--replay", args.replay)):
        if value is not None:
            return f"{flag} applies to paper mode only (live mode trades the venue's market)"
    if instrument_id not in venue.instruments:
        return (
            f"{args.venue_config}: instruments does not list the strategy's instrument "
            f"{instrument_id}"
        )
    if venue.is_mainnet and not (args.confirm_live or venue.confirm_live):
        return (
            f"{args.venue_config} trades Binance MAINNET with real money: add --confirm-live "
            "(or confirm_live: true in the venue config) to start"
        )
    try:
        load_credentials(venue.environment)
    except MissingCredentials as exc:
        return str(exc)
    if args.enable_ops and not (args.api_key or os.environ.get("HEDGEGRID_API_KEY", "").strip()):
        return (
            "live mode with --enable-ops needs a control-API key: set HEDGEGRID_API_KEY "
            "(or --api-key) so that nobody else on this host can flatten or stop trading"
        )
    return None


def cmd_run(args: argparse.Namespace) -> int:
    try:
        strategy = load_strategy_config(args.strategy_config)
        loaded = load_any_venue_config(args.venue_config)
    except ConfigError as exc:
        return _fail(str(exc))
    if args.mode == "live":
        if not isinstance(loaded, BinanceVenueConfig):
            return _fail(
                f"--mode live needs a live venue config (kind: binance), and "
                f"{args.venue_config} is kind {loaded.kind}; e.g. "
                "--venue-config configs/venues/binance_testnet.yaml"
            )
        problem = _check_live(args, loaded, strategy.instrument_id)
        if problem is not None:
            return _fail(problem)
        return _start(args, strategy, loaded)
    if isinstance(loaded, BinanceVenueConfig):
        return _fail(f"{args.venue_config} is a live venue config (kind: binance): add --mode live")
    if args.confirm_live:
        return _fail("--confirm-live applies to --mode live only")
    try:
        venue = _apply_market_overrides(loaded, args, args.venue_config)
    except ConfigError as exc:
        return _fail(str(exc))
    if args.mode == "paper" and (problem := unprovided_instrument(strategy.instrument_id)):
        return _fail(problem)
    if args.replay is not None:
        from hedgegrid_ops.venues.sim.replay import ReplayError, load_binance_klines

        try:
            load_binance_klines(args.replay)  # raises on a missing, empty or malformed file
        except ReplayError as exc:
            return _fail(f"--replay: {exc}")
    if args.seed is not None and not 0 <= args.seed <= MAX_SEED:
        return _fail(f"--seed must be between 0 and {MAX_SEED}")

    return _start(args, strategy, venue)


def _start(args: argparse.Namespace, strategy: StrategyConfig, venue: AnyVenueConfig) -> int:
    if (problem := _check_notify_flags(args)) is not None:
        return _fail(problem)
    ops_settings = None
    key_warning = None
    if args.enable_ops:
        try:
            ops_settings = _ops_settings(args, strategy.instrument_id)
        except ValueError as exc:
            return _fail(str(exc))
        key_warning = ops_settings.key_warning()
        if key_warning is not None and args.mode == "live":
            return _fail(f"{key_warning}; live mode refuses a short key")

    from hedgegrid_ops.state import StateError, StateStore, load_saved

    try:
        state = StateStore.open(args.state_dir)
    except StateError as exc:
        return _fail(str(exc))
    try:
        saved = load_saved(state)
    except StateError as exc:
        state.close()
        return _fail(str(exc))
    try:
        return _run(args, strategy, venue, ops_settings, key_warning, state, saved)
    finally:
        state.close()


def _run(
    args: argparse.Namespace,
    strategy: StrategyConfig,
    venue: AnyVenueConfig,
    ops_settings: OpsSettings | None,
    key_warning: str | None,
    state: StateStore,
    saved: SavedState,
) -> int:
    from hedgegrid_ops.logs import (
        LogSetupError,
        configure_logging,
        emit_stdout,
        get_logger,
        reopen_logs,
        shutdown_logging,
    )
    from hedgegrid_ops.node import RunOptions, StartupError, run_paper
    from hedgegrid_ops.ops.service import OpsStartError

    try:
        configure_logging(
            args.log_dir,
            level=args.log_level,
            max_bytes=args.log_max_mb * 1024 * 1024,
            backups=args.log_backups,
        )
    except LogSetupError as exc:
        return _fail(f"--log-dir: {exc}")
    # SIGHUP is the log-rotation convention: reopen the files instead of dying. The
    # handler only sets flags that the writer threads read before their next line.
    signal.signal(signal.SIGHUP, lambda _sig, _frame: reopen_logs())
    log = get_logger("cli")
    if key_warning is not None:
        log.warning("weak_api_key", detail=key_warning)
        sys.stderr.write(f"warning: {key_warning}\n")
    where: dict[str, object]
    if isinstance(venue, BinanceVenueConfig):
        where = {"environment": venue.environment, "instruments": venue.instruments}
    else:
        where = {
            "seed": venue.market.seed,
            "speed": venue.market.speed,
            "replay": str(args.replay) if args.replay else None,
        }
    log.info(
        "starting",
        mode=args.mode,
        ops=bool(ops_settings),
        state_dir=str(args.state_dir),
        restored_state=saved.control.trading_state if saved.control else None,
        **where,
    )
    options = RunOptions(
        strategy=strategy,
        venue=venue,
        log_dir=args.log_dir,
        duration=args.duration,
        replay=args.replay,
        hold_after_replay=args.hold_after_replay,
        ops=ops_settings,
        state=state,
        saved=saved,
        purge_interval=args.purge_interval,
        fill_history_days=args.fill_history_days,
        log_max_bytes=args.log_max_mb * 1024 * 1024,
        log_backups=args.log_backups,
    )
    try:
        result = run_paper(options)
    except OpsStartError as exc:
        log.error("startup_failed", detail=str(exc))
        shutdown_logging()
        return _fail(str(exc))
    except StartupError as exc:
        log.error("node_failed", detail=str(exc))
        shutdown_logging()
        return _fail(str(exc))
    except Exception as exc:  # the traceback goes to trading.log, one line to the operator
        log.exception("run_failed")
        shutdown_logging()
        sys.stderr.write(f"error: the run failed: {exc!r} (traceback in {args.log_dir})\n")
        return 1
    shutdown_logging()
    emit_stdout(orjson.dumps(result))  # bounded wait: a stdout nobody reads cannot hang exit
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "run":
        return cmd_run(args)
    if args.command == "exchange":
        from hedgegrid_ops.venues.binance_local.cli import cmd_exchange

        return cmd_exchange(args)
    if args.command == "backtest":
        from hedgegrid_ops.backtest_cli import cmd_backtest

        return cmd_backtest(args)
    from hedgegrid_ops.client_cli import run_client_command

    return run_client_command(args)

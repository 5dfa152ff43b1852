"""``python -m hedgegrid_ops exchange``: run the local Binance USDT-M exchange.

Prints one JSON line (``"event": "exchange_listening"``, URLs, API key, admin
token) on stdout once it listens, then serves until SIGINT/SIGTERM. Problems with
flags, the replay file or the state file end it with one line on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
import time
from decimal import Decimal, InvalidOperation
from pathlib import Path

ENV_SECRET = "HEDGEGRID_EXCHANGE_API_SECRET"
ENV_ADMIN_TOKEN = "HEDGEGRID_EXCHANGE_ADMIN_TOKEN"
EXIT_USAGE = 2


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid integer {value!r}") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"{value!r} must be >= 0")
    return number


def _decimal(lo: Decimal, hi: Decimal | None, what: str):
    """argparse type: a finite decimal in [lo, hi) (no upper bound when ``hi`` is None)."""

    def parse(value: str) -> Decimal:
        try:
            number = Decimal(value)
        except InvalidOperation:
            raise argparse.ArgumentTypeError(f"invalid number {value!r}") from None
        if not number.is_finite() or number < lo or (hi is not None and number >= hi):
            raise argparse.ArgumentTypeError(f"{value!r} must be {what}")
        return number

    return parse


_fraction = _decimal(Decimal(0), Decimal(1), "a fraction in [0, 1)")
_amount = _decimal(Decimal(0), None, "a finite amount >= 0")


def add_exchange_command(subparsers: argparse._SubParsersAction, port, positive) -> None:
    """Register the ``exchange`` subcommand (``port``/``positive`` are the CLI's validators)."""
    p = subparsers.add_parser(
        "exchange",
        help="run a local Binance USDT-M futures exchange (for live-mode rehearsals and tests)",
        description=(
            "Serve Binance USDT-M futures REST + WebSocket on a local port, with a matching "
            "engine against the simulated market. NautilusTrader's Binance adapter connects "
            "with only its URLs, key and secret changed. See docs/local-exchange.md."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=port, default=0, help="port; 0 = any free port")
    p.add_argument("--seed", type=_positive_int, default=7, help="seed of the simulated market")
    p.add_argument(
        "--speed",
        type=positive,
        default=1.0 / 60.0,
        help="simulated minutes per wall second (1/60 = real time)",
    )
    p.add_argument("--replay", type=Path, default=None, help="replay a Binance kline CSV")
    p.add_argument(
        "--state",
        type=Path,
        default=None,
        help="keep the account in this JSON file across restarts",
    )
    p.add_argument("--initial-price", type=positive, default=60000.0, help="synthetic start price")
    p.add_argument(
        "--ticks-per-minute", type=_positive_int, default=60, help="quote+trade ticks per minute"
    )
    p.add_argument(
        "--history-minutes",
        type=_positive_int,
        default=240,
        help="minutes of kline history generated before the start",
    )
    p.add_argument(
        "--minutes-to-funding",
        type=_positive_int,
        default=None,
        help="start the simulated clock this many minutes before a 00/08/16 UTC funding "
        "time (1-480; default: the wall clock, so the first settlement can be up to 8 "
        "simulated hours away)",
    )
    p.add_argument("--balance", type=_amount, default=Decimal(10000), help="starting USDT")
    p.add_argument("--maker-fee", type=_fraction, default=Decimal("0.0002"), help="maker fee")
    p.add_argument("--taker-fee", type=_fraction, default=Decimal("0.0005"), help="taker fee")
    p.add_argument("--leverage", type=_positive_int, default=20, help="initial leverage (1-125)")
    p.add_argument(
        "--one-way", action="store_true", help="start in one-way mode instead of hedge mode"
    )
    p.add_argument(
        "--api-key",
        default=None,
        help="the accepted X-MBX-APIKEY (default local-api-key); the secret comes from "
        f"${ENV_SECRET} (default local-api-secret), the admin token from ${ENV_ADMIN_TOKEN} "
        "(default: random, printed in the start-up line)",
    )


class JsonLineFormatter(logging.Formatter):
    """One JSON object per log line on stderr, like the rest of the project's logs."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "timestamp": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line)


def _fail(message: str) -> int:
    sys.stderr.write(f"error: {message}\n")
    return EXIT_USAGE


def cmd_exchange(args: argparse.Namespace) -> int:
    from hedgegrid_ops.venues.binance_local.engine import AccountConfig
    from hedgegrid_ops.venues.binance_local.server import (
        DEFAULT_API_KEY,
        DEFAULT_API_SECRET,
        ExchangeConfig,
        LocalExchange,
    )
    from hedgegrid_ops.venues.binance_local.state import StateError
    from hedgegrid_ops.venues.sim.process import next_funding_ns
    from hedgegrid_ops.venues.sim.replay import ReplayError

    if not 1 <= args.leverage <= 125:
        return _fail(f"--leverage must be 1..125, was {args.leverage}")
    if args.replay is not None and args.ticks_per_minute < 4:
        return _fail("--ticks-per-minute must be >= 4 with --replay")
    if args.ticks_per_minute < 1:
        return _fail("--ticks-per-minute must be >= 1")
    if args.initial_price <= 1.0:
        return _fail("--initial-price must be > 1")
    start_ns = None
    if args.minutes_to_funding is not None:
        if args.replay is not None:
            return _fail("--minutes-to-funding cannot be used with --replay (the file sets time)")
        if not 1 <= args.minutes_to_funding <= 480:
            return _fail(f"--minutes-to-funding must be 1..480, was {args.minutes_to_funding}")
        start_ns = next_funding_ns(time.time_ns()) - args.minutes_to_funding * 60 * 10**9
    if args.state is not None and not args.state.parent.resolve().is_dir():
        return _fail(f"--state: directory {args.state.parent} does not exist")
    config = ExchangeConfig(
        host=args.host,
        port=args.port,
        seed=args.seed,
        speed=args.speed,
        initial_price=args.initial_price,
        ticks_per_minute=args.ticks_per_minute,
        history_minutes=args.history_minutes,
        replay=args.replay,
        state=args.state,
        start_ns=start_ns,
        api_key=args.api_key or DEFAULT_API_KEY,
        api_secret=os.environ.get(ENV_SECRET) or DEFAULT_API_SECRET,
        admin_token=os.environ.get(ENV_ADMIN_TOKEN) or None,
        account=AccountConfig(
            starting_balance=args.balance,
            maker_fee=args.maker_fee,
            taker_fee=args.taker_fee,
            leverage=args.leverage,
            dual_side=not args.one_way,
        ),
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLineFormatter())
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    try:
        return asyncio.run(_serve(LocalExchange(config)))
    except ReplayError as exc:
        return _fail(f"--replay: {exc}")
    except StateError as exc:
        return _fail(f"--state: {exc}")
    except OSError as exc:
        return _fail(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}")


async def _serve(exchange) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await exchange.start()
    line = exchange.describe() | {"admin_token": exchange.admin_token, "pid": os.getpid()}
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()
    try:
        await stop.wait()
    finally:
        await exchange.stop()
    return 0

"""Client sub-commands: status, health, ladders, orders, fills, pnl, start, stop, flatten,
throttle, watch.

The operator's side of the control API, built on ``HedgeGridClient``. Output is a
readable table by default and the server's JSON with ``--json``, so the same commands
serve a person at a terminal and a script. Exit codes say who is at fault:

* 0 - done; 1 - the server refused (its detail and error code are printed);
* 3 - the server could not be reached (so a retry or a page may help);
* ``health`` follows the Nagios plugin convention, like docs/examples/health_check.sh,
  and trusts the server's verdict (the server knows its own ``--max-bar-age``): 0 OK
  (healthy), 2 CRITICAL (degraded or down, with the server's reason), 3 UNKNOWN (no
  usable answer).

``cli.py`` owns the top-level parser; it calls ``add_client_commands`` to register these
sub-commands and ``run_client_command`` to run the one chosen.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

import msgspec

from hedgegrid_ops.api import (
    Fills,
    FlattenResult,
    Health,
    Ladders,
    Orders,
    PnlDaily,
    RungView,
    StartResult,
    Status,
    StopResult,
    ThrottleResult,
)
from hedgegrid_ops.client import HedgeGridAPIError, HedgeGridClient, HedgeGridConnectionError
from hedgegrid_ops.commands import FLATTEN_SIDES
from hedgegrid_ops.watch import run_watch

__all__ = [
    "CLIENT_COMMANDS",
    "DEFAULT_URL",
    "add_client_commands",
    "evaluate_health",
    "main",
    "run_client_command",
]

DEFAULT_URL = "http://127.0.0.1:8080"
CLIENT_COMMANDS = (
    "status",
    "health",
    "ladders",
    "orders",
    "fills",
    "pnl",
    "start",
    "stop",
    "flatten",
    "throttle",
    "watch",
)

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_CRITICAL = 2
EXIT_UNKNOWN = 3


# --------------------------------------------------------------------------- parser


def add_client_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register the client sub-commands on the program's sub-parsers."""
    common = argparse.ArgumentParser(add_help=False)
    conn = common.add_argument_group("connection")
    conn.add_argument(
        "--url",
        default=None,
        help=f"control API base URL (env HEDGEGRID_URL, default {DEFAULT_URL})",
    )
    conn.add_argument(
        "--api-key",
        default=None,
        help="X-API-Key for protected routes (env HEDGEGRID_API_KEY)",
    )
    conn.add_argument(
        "--timeout", type=float, default=10.0, help="seconds to wait for an answer (default 10)"
    )
    common.add_argument(
        "--json", dest="as_json", action="store_true", help="print the server's JSON as is"
    )

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        parser = subparsers.add_parser(name, parents=[common], help=help_text)
        parser.set_defaults(client_command=name)
        return parser

    add("status", "positions, PnL, margin, funding and state")
    add("health", "the server's health verdict as a Nagios exit code (0 OK, 2 CRIT, 3 UNKNOWN)")
    add("ladders", "grid ladders as placed")
    add("orders", "open orders (grid and exits)")
    fills = add("fills", "fill history, newest first (kept in the node's state directory)")
    fills.add_argument(
        "--since", type=float, default=None, help="only fills at or after this unix time"
    )
    fills.add_argument(
        "--before", type=int, default=None, help="only fills older than this seq (paging)"
    )
    fills.add_argument("--limit", type=int, default=100, help="page size, 1..1000 (default 100)")
    add("pnl", "realized PnL, fees, funding and fills per UTC day")
    add("start", "start (or resume) trading")
    add("stop", "pause trading: cancel grid orders, keep positions and exits")
    flatten = add("flatten", "cancel orders and close positions at market")
    flatten.add_argument("--side", required=True, choices=FLATTEN_SIDES, help="which side to close")
    throttle = add("throttle", "set aggressiveness, 0.0 (passive) to 1.0 (aggressive)")
    throttle.add_argument("value", type=float, help="new throttle, 0.0 to 1.0")
    watch = add("watch", "live view of state, positions, PnL and fills from the event stream")
    watch.add_argument(
        "--count",
        type=_positive_int,
        default=None,
        help="exit after this many screens (default: until Ctrl-C)",
    )


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """A parser with only the client commands (``python -m hedgegrid_ops.client_cli``)."""
    parser = argparse.ArgumentParser(
        prog="hedgegrid_ops", description="Control and inspect a running hedgegrid node."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_client_commands(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_client_command(args)


# --------------------------------------------------------------------------- running


def run_client_command(
    args: argparse.Namespace, *, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Run the sub-command ``args.client_command``; returns the process exit code."""
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    url = args.url or os.environ.get("HEDGEGRID_URL") or DEFAULT_URL
    api_key = args.api_key or os.environ.get("HEDGEGRID_API_KEY") or None
    client = HedgeGridClient(url, api_key=api_key, timeout=args.timeout)
    command: str = args.client_command

    if command == "health":
        return _run_health(client, args, out)
    if command == "watch":
        return run_watch(url, api_key, out, err, args.count)

    call, render = _COMMANDS[command]
    try:
        result = call(client, args)
    except HedgeGridAPIError as exc:
        print(f"error: {exc.detail} (HTTP {exc.status} {exc.error})", file=err)
        return EXIT_REFUSED
    except HedgeGridConnectionError as exc:
        print(f"error: cannot reach {exc.url}: {exc.reason}", file=err)
        return EXIT_UNKNOWN
    if args.as_json:
        print(_json(result), file=out)
    else:
        print(render(result), file=out)
    return EXIT_OK


def _json(result: msgspec.Struct) -> str:
    """The answer as the server sent it (every declared field), pretty-printed."""
    return json.dumps(msgspec.to_builtins(result), indent=2, sort_keys=True)


def _run_health(client: HedgeGridClient, args: argparse.Namespace, out: TextIO) -> int:
    try:
        health = client.get_health()
    except HedgeGridConnectionError as exc:
        print(f"UNKNOWN: cannot reach {exc.url}: {exc.reason}", file=out)
        return EXIT_UNKNOWN
    except HedgeGridAPIError as exc:  # wrong URL (404), auth proxy, HTML error page ...
        print(f"UNKNOWN: unusable answer: {exc.detail} (HTTP {exc.status} {exc.error})", file=out)
        return EXIT_UNKNOWN
    code, message = evaluate_health(health)
    print(_json(health) if args.as_json else message, file=out)
    return code


def evaluate_health(health: Health) -> tuple[int, str]:
    """The server's verdict as a Nagios plugin answer: (exit code, one-line message).

    The server decides healthy / degraded / down against its own ``--max-bar-age``;
    this only maps the verdict to an exit code and adds the bar age as perf data.
    """
    age = health.bar_age_seconds
    perf = "" if age is None else f" | bar_age={age:.0f}s;;;0"
    if health.status != "healthy":
        reason = health.reason or "no reason given"
        return (
            EXIT_CRITICAL,
            f"CRITICAL: strategy is {health.status} ({health.trading_state}): {reason}{perf}",
        )
    last = "no bar yet" if age is None else f"last bar {age:.0f}s ago"
    return EXIT_OK, f"OK: strategy healthy ({health.trading_state}), {last}{perf}"


# --------------------------------------------------------------------------- formatting


def _num(value: Any, digits: int = 2) -> str:
    if isinstance(value, bool) or value is None:
        return "-" if value is None else str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def _qty(value: Any) -> str:
    """Quantities to 6 decimals without trailing zeros: 0.05, not 0.050000."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:,.6f}".rstrip("0").rstrip(".")
    return _num(value)


def _pct(value: Any, digits: int = 1) -> str:
    return f"{value * 100:.{digits}f}%" if isinstance(value, int | float) else "-"


def _when(ts: Any) -> str:
    if not isinstance(ts, int | float):
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(seconds: Any) -> str:
    if not isinstance(seconds, int | float):
        return "-"
    total = int(seconds)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{days}d"] if days else []
    if days or hours:
        parts.append(f"{hours}h")
    parts += [f"{minutes}m", f"{secs}s"] if days or hours or minutes else [f"{secs}s"]
    return " ".join(parts)


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Plain-text table; columns whose cells all look numeric are right-aligned."""
    body = [list(r) for r in rows]
    widths = [len(h) for h in headers]
    for row in body:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]

    def numeric(i: int) -> bool:
        cells = [r[i] for r in body if r[i] != "-"]
        return bool(cells) and all(
            c.replace(",", "").lstrip("-").replace(".", "", 1).isdigit() for c in cells
        )

    align = [numeric(i) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if right else c.ljust(w)
            for c, w, right in zip(cells, widths, align, strict=True)
        ).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, body)])


def _pairs(items: Sequence[tuple[str, str]]) -> str:
    width = max(len(k) for k, _ in items)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in items)


def render_status(s: Status) -> str:
    state = s.trading_state.value
    if s.state_reason:
        state += f" ({s.state_reason})"
    overview = _pairs(
        [
            ("Instrument", s.instrument),
            ("Trading state", state),
            ("Regime", s.regime.value),
            ("Throttle", _num(s.throttle)),
            ("Mid price", _num(s.mid_price)),
            ("Grid center", _num(s.grid_center)),
            ("Open orders", _num(s.open_orders)),
            ("Balance", f"{_num(s.balance_usdt)} USDT"),
            ("Equity", f"{_num(s.equity_usdt)} USDT"),
            ("Margin used", f"{_num(s.margin_used_usdt)} USDT"),
            ("Margin ratio", _pct(s.margin_ratio)),
            ("Maker ratio", _pct(s.maker_ratio)),
            ("Uptime", _duration(s.uptime)),
            ("Last bar", _when(s.last_bar)),
            ("As of", _when(s.timestamp)),
        ]
    )
    pos_rows = [
        [
            name.upper(),
            _qty(p.quantity),
            _num(p.entry_price),
            _num(p.inventory_usdt),
            _num(p.unrealized_pnl),
        ]
        for name, p in (("long", s.positions.long), ("short", s.positions.short))
    ]
    pos_table = _table(
        ["Side", "Quantity", "Entry price", "Inventory USDT", "Unrealized PnL"], pos_rows
    )
    pnl_line = (
        f"PnL (USDT): realized {_num(s.pnl.realized)}, "
        f"unrealized {_num(s.pnl.unrealized)}, total {_num(s.pnl.total)}"
    )
    f = s.funding
    funding_line = (
        f"Funding: rate {_pct(f.rate, 4)}, "
        f"next {_when(f.next_funding_time)}, "
        f"projected 1h cost {_num(f.cost_1h_projected_usdt)} USDT, "
        f"scale long {_num(f.scale_long)} / short {_num(f.scale_short)}"
    )
    counters = msgspec.structs.asdict(s.counters)
    counters_line = textwrap.fill(
        "Counters: " + ", ".join(f"{k} {_num(v)}" for k, v in counters.items()),
        width=100,
        subsequent_indent="  ",
    )
    return "\n\n".join([overview, pos_table, pnl_line, funding_line, counters_line])


def _ladder(title: str, rungs: Sequence[RungView]) -> str:
    if not rungs:
        return f"{title}: no rungs"
    rows = [[_num(r.rung), _num(r.price), _qty(r.qty), r.status, r.client_order_id] for r in rungs]
    return f"{title}:\n" + _table(["Rung", "Price", "Qty", "Status", "Client order id"], rows)


def render_ladders(d: Ladders) -> str:
    head = (
        f"Mid price {_num(d.mid_price)}, grid center {_num(d.grid_center)}, "
        f"throttle {_num(d.throttle)}, as of {_when(d.timestamp)}"
    )
    return "\n\n".join(
        [head, _ladder("Long ladder", d.long_ladder), _ladder("Short ladder", d.short_ladder)]
    )


def render_orders(d: Orders) -> str:
    if not d.orders:
        return f"no open orders (as of {_when(d.timestamp)})"
    rows = [
        [
            o.client_order_id,
            o.side,
            o.position_side,
            o.role,
            _num(o.rung),
            o.order_type,
            _num(o.price),
            _num(o.trigger_price),
            _qty(o.quantity),
            _qty(o.filled_qty),
            o.status,
        ]
        for o in d.orders
    ]
    headers = ["Client order id", "Side", "Pos", "Role", "Rung", "Type", "Price"]
    headers += ["Trigger", "Qty", "Filled", "Status"]
    count = d.count
    return _table(headers, rows) + f"\n\n{count} open order{'s' if count != 1 else ''}"


def render_fills(d: Fills) -> str:
    if not d.fills:
        return f"no fills (as of {_when(d.timestamp)})"
    rows = [
        [
            _num(f.seq),
            _when(f.time),
            f.side,
            f.position_side.value if f.position_side else "-",
            _num(f.price),
            _qty(f.qty),
            f"{_num(f.commission)} {f.commission_asset}",
            f.liquidity,
            _num(f.realized_pnl),
            f.trade_id,
            f.client_order_id,
            f.request_id or "-",
        ]
        for f in d.fills
    ]
    headers = ["Seq", "Time", "Side", "Pos", "Price", "Qty", "Commission", "Liq"]
    headers += ["Realized", "Trade id", "Client order id", "Request"]
    more = f"; older: --before {d.next_before}" if d.next_before is not None else ""
    return _table(headers, rows) + f"\n\n{d.count} fill{'s' if d.count != 1 else ''}{more}"


def render_pnl(d: PnlDaily) -> str:
    if not d.days:
        return f"no fills or funding recorded yet (as of {_when(d.timestamp)})"
    rows = [
        [r.day, _num(r.realized_pnl), _num(r.fees), _num(r.funding), _num(r.fills)] for r in d.days
    ]
    return _table(["Day (UTC)", "Realized PnL", "Fees", "Funding", "Fills"], rows)


def render_start(d: StartResult) -> str:
    if d.status == "already_running":
        return f"already running (state {d.trading_state.value})"
    return f"started: {d.previous_state.value} -> {d.trading_state.value}"


def render_stop(d: StopResult) -> str:
    if d.status == "already_stopped":
        return f"already stopped (state {d.trading_state.value})"
    n = d.cancelled_orders
    return (
        f"stopped: {d.previous_state.value} -> {d.trading_state.value}, "
        f"cancelled {n} order{'s' if n != 1 else ''}"
    )


def render_flatten(d: FlattenResult) -> str:
    closing = ", ".join(s.value for s in d.closing_positions) or "none"
    already = ", ".join(s.value for s in d.already_closing) or "none"
    return (
        f"{d.status} {d.side}: cancelled {d.cancelled_orders} orders, "
        f"closing {closing}, already closing {already}; state {d.trading_state.value}"
    )


def render_throttle(d: ThrottleResult) -> str:
    if d.status == "unchanged":
        return f"throttle unchanged at {_num(d.new_throttle)}"
    return f"throttle updated: {_num(d.previous_throttle)} -> {_num(d.new_throttle)}"


Call = Callable[[HedgeGridClient, argparse.Namespace], Any]
Render = Callable[[Any], str]

_COMMANDS: dict[str, tuple[Call, Render]] = {
    "status": (lambda c, a: c.get_status(), render_status),
    "ladders": (lambda c, a: c.get_ladders(), render_ladders),
    "orders": (lambda c, a: c.get_orders(), render_orders),
    "fills": (lambda c, a: c.get_fills(a.since, a.before, a.limit), render_fills),
    "pnl": (lambda c, a: c.get_pnl_daily(), render_pnl),
    "start": (lambda c, a: c.start(), render_start),
    "stop": (lambda c, a: c.stop(), render_stop),
    "flatten": (lambda c, a: c.flatten(a.side), render_flatten),
    "throttle": (lambda c, a: c.set_throttle(a.value), render_throttle),
}


if __name__ == "__main__":
    sys.exit(main())

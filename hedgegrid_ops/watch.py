"""``hedgegrid_ops watch``: a live terminal view driven by the ``/events`` stream.

The view keeps the latest snapshot, the health verdict from heartbeats, the last fills
and the last notable events (state, throttle, flatten, kill switch, audit, rejects) and
redraws after each snapshot message, which the server already limits to a few per
second. On a terminal each frame replaces the last; piped, frames are separated by a
blank line so the output stays a readable log. The drawing is a pure function of the
view (``render``), so it is tested without a server.

Exit codes follow the other client commands: 0 after ``--count`` frames or Ctrl-C,
1 when the server refuses the key, 3 when the server cannot be reached at start.
After a drop the view reconnects with back-off and says so on screen.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

from hedgegrid_ops.client import HedgeGridClientError, HedgeGridConnectionError
from hedgegrid_ops.client_stream import HedgeGridStreamClosed, stream_events

CLEAR = "\x1b[H\x1b[2J"
FILLS_SHOWN = 8
EVENTS_SHOWN = 6
MAX_BACKOFF = 15.0


@dataclass
class WatchView:
    """What the terminal shows; updated message by message."""

    status: dict[str, Any] | None = None
    health: dict[str, Any] | None = None
    fills: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=FILLS_SHOWN))
    events: deque[str] = field(default_factory=lambda: deque(maxlen=EVENTS_SHOWN))
    connection: str = "connecting"

    def apply(self, msg: dict[str, Any]) -> bool:
        """Take one stream message; True when the screen should be redrawn."""
        kind, data = msg.get("type"), msg.get("data") or {}
        if kind == "snapshot":
            self.status = data.get("status")
            return True
        if kind == "heartbeat":
            self.health = data.get("health")
            return False
        if kind == "fill":
            self.fills.appendleft(data)
            return False
        line = describe(kind, data)
        if line is not None:
            self.events.appendleft(f"{_clock(msg.get('time'))}  {line}")
        return False


def describe(kind: Any, d: dict[str, Any]) -> str | None:
    """One line for a notable event, None for the ones the view does not list."""
    match kind:
        case "trading_state":
            return f"trading {d.get('previous')} -> {d.get('state')}: {d.get('reason')}"
        case "throttle":
            return f"throttle {d.get('previous')} -> {d.get('throttle')}"
        case "flatten":
            return (
                f"flatten {d.get('phase')}: long {_qty(d.get('long_qty'))}, "
                f"short {_qty(d.get('short_qty'))}"
            )
        case "kill_switch":
            return f"KILL SWITCH {d.get('breaker', '')}: {d.get('reason', d)}"
        case "audit":
            detail = f": {d['detail']}" if d.get("detail") else ""
            return f"audit {d.get('action')} -> {d.get('outcome')}{detail}"
        case "order" if d.get("event") in ("rejected", "denied"):
            return f"order {d.get('event')} {d.get('client_order_id')}: {d.get('reason', '')}"
    return None


def _num(value: Any, digits: int = 2) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "-"
    return f"{value:,.{digits}f}"


def _qty(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "-"
    return f"{value:.6f}".rstrip("0").rstrip(".") or "0"


def _clock(ts: Any) -> str:
    if not isinstance(ts, int | float):
        return "--:--:--"
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%S")


def render(view: WatchView, width: int = 100) -> str:
    """The whole screen for ``view`` as text."""
    s = view.status
    lines = [f"hedgegrid_ops watch  [{view.connection}]"]
    if s is None:
        lines.append("waiting for the first snapshot...")
        return "\n".join(lines)
    health = view.health or {}
    state = f"{s.get('trading_state')}"
    if s.get("state_reason"):
        state += f" ({s['state_reason']})"
    lines += [
        f"{s.get('instrument')}  as of {_clock(s.get('timestamp'))} UTC",
        f"state   {state}",
        f"health  {health.get('status', '-')}"
        + (f" ({health['reason']})" if health.get("reason") else ""),
        f"regime  {s.get('regime')}   throttle {_num(s.get('throttle'))}   "
        f"mid {_num(s.get('mid_price'))}   center {_num(s.get('grid_center'))}   "
        f"open orders {s.get('open_orders')}",
        "",
        f"{'side':<6}{'qty':>12}{'entry':>14}{'uPnL':>12}{'inventory':>14}",
    ]
    for side in ("long", "short"):
        p = (s.get("positions") or {}).get(side) or {}
        lines.append(
            f"{side.upper():<6}{_qty(p.get('quantity')):>12}{_num(p.get('entry_price')):>14}"
            f"{_num(p.get('unrealized_pnl'), 4):>12}{_num(p.get('inventory_usdt')):>14}"
        )
    pnl = s.get("pnl") or {}
    funding = s.get("funding") or {}
    next_funding = _clock(funding.get("next_funding_time"))
    funding_cost = _num(funding.get("cost_1h_projected_usdt"), 4)
    lines += [
        "",
        f"balance {_num(s.get('balance_usdt'))}  equity {_num(s.get('equity_usdt'))}  "
        f"margin used {_num(s.get('margin_used_usdt'))} USDT",
        f"PnL     realized {_num(pnl.get('realized'), 4)}  unrealized "
        f"{_num(pnl.get('unrealized'), 4)}  total {_num(pnl.get('total'), 4)} USDT",
        f"funding rate {_num(funding.get('rate'), 6)}  next {next_funding} UTC  "
        f"1h cost {funding_cost} USDT",
        "",
        "latest fills" if view.fills else "latest fills: none since connecting",
    ]
    for f in view.fills:
        who = (
            f"{f.get('side', '-'):<4} {f.get('position_side') or '-':<5} {f.get('role') or '-':<11}"
        )
        size = f"{_qty(f.get('qty')):>8} @ {_num(f.get('price'))}"
        lines.append(f"  {_clock(f.get('ts_event'))}  {who} {size}  {f.get('liquidity', '')}")
    if view.events:
        lines += ["", "events", *(f"  {e}" for e in view.events)]
    return "\n".join(line[:width] for line in lines)


async def watch(
    base_url: str,
    api_key: str | None,
    out: TextIO,
    err: TextIO,
    *,
    count: int | None = None,
    clear: bool = True,
) -> int:
    """Draw the view until ``count`` frames were drawn, the key is refused or Ctrl-C."""
    view = WatchView()
    frames = 0
    backoff = 1.0
    connected_once = False

    def draw() -> None:
        text = render(view)
        out.write((CLEAR + text + "\n") if clear else (text + "\n\n"))
        out.flush()

    while True:
        try:
            async for msg in stream_events(base_url, api_key):
                connected_once = True
                backoff = 1.0
                view.connection = "live"
                if view.apply(msg):
                    draw()
                    frames += 1
                    if count is not None and frames >= count:
                        return 0
        except HedgeGridStreamClosed as exc:
            if exc.unauthorized:
                print(f"error: {exc.reason} (event stream closed with {exc.code})", file=err)
                return 1
            view.connection = f"disconnected: {exc.reason or exc.code}; retrying in {backoff:g}s"
        except HedgeGridConnectionError as exc:
            if not connected_once:
                print(f"error: cannot reach {exc.url}: {exc.reason}", file=err)
                return 3
            view.connection = f"disconnected: {exc.reason}; retrying in {backoff:g}s"
        except HedgeGridClientError as exc:
            print(f"error: {exc}", file=err)
            return 1
        draw()
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2, MAX_BACKOFF)


def run_watch(
    base_url: str, api_key: str | None, out: TextIO, err: TextIO, count: int | None
) -> int:
    """Blocking entry point for the CLI; Ctrl-C ends the view with exit code 0."""
    clear = out.isatty()
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(watch(base_url, api_key, out, err, count=count, clear=clear))
    return 0

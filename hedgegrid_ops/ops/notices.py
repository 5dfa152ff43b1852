"""What is worth a message to a person, and how it reads in a chat channel.

Notices are derived from consecutive snapshots (and the audit trail), the way the
event stream derives its trading-state and flatten events (``ops/events.py``): every
kill-switch trip, halt and flatten shows in the snapshot the strategy publishes right
after it, with the reason the operator sees in ``/status`` (a trip's reason names the
breaker, the measured value and the limit). Reading snapshots rather than hooking the
strategy keeps the notifier on the ops side of the layering and costs the strategy one
comparison per snapshot.

What is posted:

- a kill-switch trip (``kill_switch``): the breaker's reason and what it does about it;
  the halt it causes is part of that message, not a second one;
- a halt for any other reason (``halt``), e.g. a node stopping; a halt restored at
  start-up from the state directory is not announced again;
- a flatten (``flatten``) when it starts and when it ends (flat, or given up with what
  is left). An operator's flatten is announced from its audit record, which names the
  side, who asked (client and request id) and which legs got a close; one the strategy
  starts by itself (a leg found flipped) from the state turning ``flattening``; a
  kill-switch flatten ends with a message once both legs are flat. Fills in between
  are not posted: a chat channel is not a trade log.

Pure apart from the previous snapshot it remembers; ``render`` builds the JSON body.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson

from hedgegrid_ops.snapshot import StrategySnapshot, TradingState

# Discord refuses ``content`` longer than 2,000 characters; Slack takes far more.
MAX_TEXT = 2000
STALE_DATA = "stale_data"  # the one breaker that cancels instead of closing at market


class NoticeKind(StrEnum):
    KILL_SWITCH = "kill_switch"
    FLATTEN = "flatten"
    HALT = "halt"


@dataclass(frozen=True)
class Notice:
    kind: NoticeKind
    text: str


def render(notice: Notice) -> bytes:
    """The POST body: Slack reads ``text``, Discord reads ``content``; both ignore the other."""
    text = notice.text if len(notice.text) <= MAX_TEXT else notice.text[: MAX_TEXT - 1] + "…"
    return orjson.dumps({"text": text, "content": text})


def _qty(value: float) -> str:
    return f"{value:.8g}"


def _legs(snap: StrategySnapshot) -> str:
    return f"long {_qty(snap.long.quantity)}, short {_qty(snap.short.quantity)}"


def _flat(snap: StrategySnapshot) -> bool:
    return (
        snap.long.quantity == 0
        and snap.short.quantity == 0
        and not any(o.role == "flatten" for o in snap.orders)
    )


def _new_trip(prev: StrategySnapshot, snap: StrategySnapshot) -> bool:
    ks, before = snap.kill_switch, prev.kill_switch
    return ks.tripped and (not before.tripped or ks.tripped_at != before.tripped_at)


class NoticeDeriver:
    """Turns the stream of snapshots into notices; ``identity`` prefixes every text."""

    def __init__(self, identity: str) -> None:
        self.identity = identity
        self._prev: StrategySnapshot | None = None
        self._breaker_flatten = False  # a trip's flatten is running under HALTED

    def observe(self, snap: StrategySnapshot) -> list[Notice]:
        """The notices ``snap`` calls for, given the snapshot before it."""
        prev, self._prev = self._prev, snap
        if prev is None:  # the first one, maybe a halt restored at start: nothing happened
            return []
        out: list[Notice] = []
        state, was = snap.trading_state, prev.trading_state
        tripped = _new_trip(prev, snap)
        if tripped:
            out.append(self._trip(snap))
            self._breaker_flatten = snap.kill_switch.breaker != STALE_DATA and not _flat(snap)
        elif state is TradingState.HALTED and was is not TradingState.HALTED:
            out.append(self._say(NoticeKind.HALT, f"HALTED: {snap.state_reason} (was {was})"))
        # An operator's flatten is announced from its audit record (``on_audit``: it names
        # the side and who asked); one the strategy starts itself (a leg found flipped)
        # shows only as the state changing to FLATTENING without the flatten counter.
        if (
            state is TradingState.FLATTENING
            and was is not TradingState.FLATTENING
            and snap.counters.flattens == prev.counters.flattens
        ):
            out.append(self._flatten_started(snap))
        elif was is TradingState.FLATTENING and state not in (
            TradingState.FLATTENING,
            TradingState.HALTED,
        ):
            out.append(self._flatten_ended(snap))
        if self._breaker_flatten and (state is not TradingState.HALTED or _flat(snap)):
            self._breaker_flatten = False
            if _flat(snap):
                done = "FLATTEN done after the kill switch: both legs flat"
                out.append(self._say(NoticeKind.FLATTEN, done))
        return out

    def _say(self, kind: NoticeKind, what: str) -> Notice:
        return Notice(kind, f"[{self.identity}] {what}")

    def _trip(self, snap: StrategySnapshot) -> Notice:
        ks = snap.kill_switch
        if ks.breaker == STALE_DATA:
            action = "grid orders cancelled (no blind close on a stale feed)"
        elif _flat(snap):
            action = "both legs already flat"
        else:
            action = f"flattening both legs ({_legs(snap)})"
        return self._say(
            NoticeKind.KILL_SWITCH,
            f"KILL SWITCH tripped: {ks.reason}; {action}; trading halted until POST /start",
        )

    def on_audit(self, record: dict[str, Any]) -> Notice | None:
        """The notice for one audit-trail record: an operator's flatten that was executed."""
        if record.get("action") != "flatten" or record.get("outcome") != "ok":
            return None
        result = record.get("result") or {}
        side = (record.get("params") or {}).get("side", "?")
        closing = result.get("closing_positions") or []
        already = result.get("already_closing") or []
        what = [f"closing {' and '.join(closing)}"] if closing else []
        if already:
            what.append(f"{' and '.join(already)} already closing")
        done = "; ".join(what) or "nothing open to close"
        return self._say(
            NoticeKind.FLATTEN,
            f"FLATTEN {side} requested by {record.get('client', '?')} "
            f"(req {record.get('request_id', '-')}): {done}, "
            f"{result.get('cancelled_orders', 0)} orders cancelled; "
            f"trading {result.get('trading_state', '?')}",
        )

    def _flatten_started(self, snap: StrategySnapshot) -> Notice:
        return self._say(
            NoticeKind.FLATTEN, f"FLATTEN started: {snap.state_reason} ({_legs(snap)})"
        )

    def _flatten_ended(self, snap: StrategySnapshot) -> Notice:
        done = "done" if _flat(snap) else "ended with positions left"
        return self._say(
            NoticeKind.FLATTEN,
            f"FLATTEN {done}: {snap.state_reason} ({_legs(snap)}); trading {snap.trading_state}",
        )

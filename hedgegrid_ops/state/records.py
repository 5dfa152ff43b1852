"""What the strategy keeps across restarts, as typed documents in the state store.

Two documents, each written whole (a JSON value under one key), so a reader never
sees half of one:

- ``control``: the operator's (or a breaker's) decision — trading state, its
  reason and the throttle. ``starting``/``flattening`` are never saved: a restart
  resumes ``running``, ``paused`` or ``halted``.
- ``kill_switch``: the breaker baselines (session-start and peak equity) and the
  trip that halted trading, if any, with counts per breaker.

A document that does not decode stops start-up (``StateError``): trading on
defaults after losing the operator's decisions is exactly what must not happen.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from hedgegrid_ops.state.store import StateError, StateStore

CONTROL_KEY = "control"
KILL_SWITCH_KEY = "kill_switch"

SavedTradingState = Literal["running", "paused", "halted"]


class ControlRecord(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    trading_state: SavedTradingState
    reason: str
    throttle: Annotated[float, msgspec.Meta(ge=0, le=1)]
    saved_at: float


class TripRecord(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    breaker: str
    measured: float | None  # None: the measurement was not a finite number (NaN, inf)
    limit: float | None
    reason: str
    at: float  # wall-clock unix seconds


class KillSwitchRecord(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    session_start_equity: float | None
    peak_equity: float | None
    last_trip: TripRecord | None
    trips: dict[str, int]
    saved_at: float


class SavedState(msgspec.Struct, frozen=True):
    control: ControlRecord | None
    kill_switch: KillSwitchRecord | None


def _decode[T](store: StateStore, key: str, kind: type[T]) -> T | None:
    raw = store.get(key)
    if raw is None:
        return None
    try:
        return msgspec.json.decode(raw, type=kind)
    except msgspec.DecodeError as exc:
        raise StateError(
            f"{store.path}: saved {key!r} is not valid ({exc}); restore it or move the file away"
        ) from None


def load_saved(store: StateStore) -> SavedState:
    """Read both documents (start-up, before the loop trades)."""
    return SavedState(
        control=_decode(store, CONTROL_KEY, ControlRecord),
        kill_switch=_decode(store, KILL_SWITCH_KEY, KillSwitchRecord),
    )


class StateSaver:
    """The strategy's handle on the store: each save queues one whole document.

    Both methods only enqueue (see ``StateStore.submit``): safe on the event loop.
    An unchanged document is not written again.
    """

    def __init__(self, store: StateStore) -> None:
        self._store = store
        self._last: dict[str, bytes] = {}

    def save_control(self, record: ControlRecord) -> None:
        self._save(CONTROL_KEY, record, msgspec.structs.replace(record, saved_at=0.0))

    def save_kill_switch(self, record: KillSwitchRecord) -> None:
        self._save(KILL_SWITCH_KEY, record, msgspec.structs.replace(record, saved_at=0.0))

    def audit(self, record: dict[str, Any]) -> None:
        """Append one audit record (JSON) to the audit trail kept in the state directory."""
        self._store.append_audit(msgspec.json.encode(record, enc_hook=str).decode())

    def _save(self, key: str, record: msgspec.Struct, identity: msgspec.Struct) -> None:
        fingerprint = msgspec.json.encode(identity)
        if self._last.get(key) == fingerprint:
            return
        self._last[key] = fingerprint
        self._store.put(key, msgspec.json.encode(record).decode())

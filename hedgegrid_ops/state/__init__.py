"""State that survives restarts: the state directory (SQLite, WAL) and what is kept in it."""

from hedgegrid_ops.state.records import (
    ControlRecord,
    KillSwitchRecord,
    SavedState,
    StateSaver,
    TripRecord,
    load_saved,
)
from hedgegrid_ops.state.store import StateError, StateStore

__all__ = [
    "ControlRecord",
    "KillSwitchRecord",
    "SavedState",
    "StateError",
    "StateSaver",
    "StateStore",
    "TripRecord",
    "load_saved",
]

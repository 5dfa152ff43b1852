"""The kill switch's memory: baselines, the trip that halted trading, and what is saved.

A collaborator of the strategy. The strategy measures the account (``RiskSample``)
and asks ``observe``; the guard keeps the session-start and peak equity, evaluates
the pure breakers of ``hedgegrid_ops.grid.breakers`` and answers with the trip to
act on (at most once until an operator starts trading again). Acting — the flatten,
the halt, the audit line — is the strategy's job, because only it can send orders.

Baselines come from the first sample with a real equity (the venue's first account
state), or from the state directory when a previous run saved them. Every change
is handed to the ``StateSaver`` (which only enqueues), so a restart resumes with
the same baselines and, when halted, the same trip.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import replace

from hedgegrid_ops.grid.breakers import (
    Baselines,
    Breaker,
    RiskLimits,
    RiskSample,
    Trip,
    data_fresh,
    data_stale,
    evaluate,
    start_baselines,
    update_peak,
)
from hedgegrid_ops.state.records import KillSwitchRecord, StateSaver, TripRecord


class RiskGuard:
    """Holds the breaker baselines and decides when a breaker trips."""

    def __init__(
        self,
        limits: RiskLimits,
        saved: KillSwitchRecord | None = None,
        saver: StateSaver | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.limits = limits
        self._saver = saver
        self._wall_clock = wall_clock
        self.baselines: Baselines | None = None
        self.last_trip: TripRecord | None = None
        self.trips: dict[str, int] = {}
        self.tripped = False  # a trip is in force: no further trips until re-armed
        self.last_equity: float | None = None
        if saved is not None:
            if saved.session_start_equity is not None and saved.peak_equity is not None:
                self.baselines = Baselines(saved.session_start_equity, saved.peak_equity)
            self.last_trip = saved.last_trip
            self.trips = dict(saved.trips)

    # ------------------------------------------------------------------ decisions

    def observe(self, sample: RiskSample) -> Trip | None:
        """Fold ``sample`` into the baselines; the first breaker outside its limit, if any.

        Returns a trip only while armed; the caller must act on it (it is recorded here).
        """
        self.last_equity = sample.equity
        self._fold_equity(sample.equity)
        if self.tripped:
            return None
        # Stale data is judged by check_stale on a timer (no event comes when data stops).
        limits = replace(self.limits, max_data_age_seconds=None)
        baselines = self.baselines
        if baselines is None:  # no real account state yet: the equity breakers wait for it
            limits = replace(limits, max_drawdown_fraction=None, max_session_loss_fraction=None)
            baselines = Baselines(0.0, 0.0)
        trips = evaluate(limits, baselines, sample)
        return self._record(trips[0]) if trips else None

    def check_stale(self, data_age_seconds: float | None) -> Trip | None:
        """The stale-data breaker (checked on a timer, since no event arrives when data stops)."""
        if self.tripped:
            return None
        trip = data_stale(self.limits, data_age_seconds)
        return self._record(trip) if trip is not None else None

    def data_fresh(self, data_age_seconds: float | None) -> bool:
        return data_fresh(self.limits, data_age_seconds)

    @property
    def halted_by_stale_data(self) -> bool:
        return (
            self.tripped
            and self.last_trip is not None
            and (self.last_trip.breaker == Breaker.STALE_DATA.value)
        )

    def restore_trip(self) -> None:
        """The previous run ended halted by a breaker: stay tripped (no second flatten)."""
        self.tripped = True

    def rearm(self) -> None:
        """An operator started trading again: new session baselines from the latest equity.

        Without this, the drawdown that tripped the breaker would trip it again at once.
        """
        self.tripped = False
        equity = self.last_equity
        if equity is not None and math.isfinite(equity) and equity > 0:
            self.baselines = start_baselines(equity)
        self._save()

    def clear_trip(self) -> None:
        """Data flows again after a stale-data halt: armed again, baselines unchanged."""
        self.tripped = False
        self._save()

    # ------------------------------------------------------------------ bookkeeping

    def _fold_equity(self, equity: float) -> None:
        if self.baselines is None:
            if math.isfinite(equity) and equity > 0:
                self.baselines = start_baselines(equity)
                self._save()
            return
        peak = update_peak(self.baselines, equity)
        if peak is not self.baselines:
            self.baselines = peak
            self._save()

    def _record(self, trip: Trip) -> Trip:
        self.tripped = True
        self.trips[trip.breaker.value] = self.trips.get(trip.breaker.value, 0) + 1
        self.last_trip = TripRecord(
            breaker=trip.breaker.value,
            measured=_finite_or_none(trip.measured),
            limit=_finite_or_none(trip.limit),
            reason=trip.reason,
            at=self._wall_clock(),
        )
        self._save()
        return trip

    def record(self) -> KillSwitchRecord:
        b = self.baselines
        return KillSwitchRecord(
            session_start_equity=b.session_start_equity if b is not None else None,
            peak_equity=b.peak_equity if b is not None else None,
            last_trip=self.last_trip,
            trips=dict(self.trips),
            saved_at=self._wall_clock(),
        )

    def _save(self) -> None:
        if self._saver is not None:
            self._saver.save_kill_switch(self.record())


def _finite_or_none(value: float) -> float | None:
    """JSON has no NaN/inf: an unmeasurable value is saved as null (the reason keeps the text)."""
    return value if math.isfinite(value) else None

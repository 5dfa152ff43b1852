"""The fill history's retention through the real program: ``run --fill-history-days``.

A state directory is seeded with fills ten days old and fills from two hours ago (as an
earlier run would have left them), then the real service starts on it. Its first
retention pass (queued as it starts) must fold the old fills into per-day totals:
``GET /fills`` no longer lists them, ``GET /pnl/daily`` still counts them, and the
recent fills are untouched.
"""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from hedgegrid_ops.history.store import SECONDS_PER_DAY as DAY
from hedgegrid_ops.history.store import FillHistory, FillRecord, utc_day
from hedgegrid_ops.state.store import StateStore
from tests.support.fills import history_fill
from tests.support.polling import wait_until
from tests.support.program import running_program


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


@pytest.fixture
def seeded_state(tmp_path: Path) -> tuple[Path, list[FillRecord], list[FillRecord]]:
    now = time.time()
    ten_days_ago_noon = now - 10 * DAY - (now % DAY) + DAY / 2  # all on one UTC day
    old = [history_fill(f"OLD-{n}", ten_days_ago_noon + n, realized=0.5 + n) for n in range(3)]
    recent = [history_fill(f"NEW-{n}", now - 7_200 + n, realized=0.25) for n in range(2)]
    state = StateStore.open(tmp_path / "state")
    state.start()
    try:
        history = FillHistory(state)
        for fill in (*old, *recent):
            history.record_fill(fill)
        assert history.flush()
    finally:
        state.close()
    return tmp_path / "state", old, recent


def test_run_folds_fills_older_than_the_window_and_keeps_their_day(
    tmp_path: Path, seeded_state: tuple[Path, list[FillRecord], list[FillRecord]]
) -> None:
    state_dir, old, recent = seeded_state
    with running_program(
        tmp_path, "--state-dir", str(state_dir), "--fill-history-days", "1"
    ) as svc:
        archived = wait_until(
            lambda: [r for r in svc.lines if r.get("event") == "fill_history_archived"],
            what="the fill_history_archived line",
        )
        trade_ids = {f["trade_id"] for f in _get(f"{svc.api_url}/fills?limit=1000")["fills"]}
        days = {d["day"]: d for d in _get(f"{svc.api_url}/pnl/daily")["days"]}
    assert archived[0]["days"] == 1 and archived[0]["fills"] == len(old)
    assert not trade_ids & {f.trade_id for f in old}
    assert {f.trade_id for f in recent} <= trade_ids
    folded = days[utc_day(old[0].ts)]
    assert folded["fills"] == len(old)
    assert folded["realized_pnl"] == pytest.approx(sum(f.realized_pnl for f in old))
    assert folded["fees"] == pytest.approx(sum(f.commission for f in old))

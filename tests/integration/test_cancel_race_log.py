"""A cancel that loses the race with a fill is logged at info, with why; warnings stay rare.

The venue answers "not found" to a cancel for an order that filled while the cancel
was on its way. That is expected every time a take profit fills during a flatten (93
of 97 warnings in five paper minutes before this), so it must not be a warning. The
scenario is the backtest-driven flatten race of ``test_backtest_flatten`` (slow
cancels, a flatten while take profits sit at the touch); the strategy's own log file
is read back.
"""

from __future__ import annotations

from pathlib import Path

import orjson

from hedgegrid_ops.logs import configure_logging, shutdown_logging
from tests.integration.test_backtest_flatten import (
    RACE_MINUTE,
    Scheduled,
    _flatten,
    _run,
    exits_filled_while_cancelling,
)


def test_a_cancel_rejected_after_a_fill_is_info_with_its_reason(tmp_path: Path) -> None:
    configure_logging(tmp_path, stdout=False)
    try:
        run = _run(70, [Scheduled(RACE_MINUTE, _flatten("both"))], slow_cancels=True)
        try:
            raced = exits_filled_while_cancelling(run.engine)
            status = {o.client_order_id.value: o.status_string() for o in run.engine.cache.orders()}
        finally:
            run.engine.dispose()
    finally:
        shutdown_logging()
    assert raced, "the scenario no longer makes an exit fill while its cancel is in flight"
    lines = [orjson.loads(ln) for ln in (tmp_path / "trading.log").read_text().splitlines()]
    rejected = [e for e in lines if e["event"] == "cancel_rejected"]
    lost_races = [e for e in rejected if e["client_order_id"] in raced]
    assert lost_races, rejected
    for entry in lost_races:
        assert entry["level"] == "info", entry
        assert entry["reason"] and "already filled" in entry["why"], entry
        assert status[entry["client_order_id"]] == "FILLED"
    # A rejection for an order that is still open would stay a warning.
    for entry in rejected:
        if status[entry["client_order_id"]] not in ("FILLED", "CANCELED", "EXPIRED"):
            assert entry["level"] == "warning", entry

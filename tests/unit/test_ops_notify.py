"""The webhook notifier: what becomes a message, its wording, and delivery over real HTTP.

Derivation and wording are pure functions of consecutive snapshots, checked on built
snapshots. Delivery runs the real ``Notifier`` with its own aiohttp session against a
real receiver on a real socket (``tests/support/webhook.py``): accepted, refused with
500 (retried, then counted as failed), refused with 404 (not retried), nobody
listening, too slow (timeout), a queue overflowing behind a receiver that is not
there yet, and a shutdown with messages still waiting.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import orjson
import pytest

from hedgegrid_ops.ops.metrics import OpsMetrics
from hedgegrid_ops.ops.notices import MAX_TEXT, Notice, NoticeDeriver, NoticeKind, render
from hedgegrid_ops.ops.notify import Notifier
from hedgegrid_ops.ops.settings import NotifySettings, OpsSettings, check_webhook_url
from hedgegrid_ops.snapshot import (
    KillSwitchView,
    OrderView,
    SideState,
    StrategySnapshot,
    TradingState,
)
from tests.support.inprocess import make_snapshot
from tests.support.ports import free_port
from tests.support.webhook import SECRET, notification_counts, webhook_receiver

IDENTITY = "hedgegrid box-1 BTCUSDT-PERP.BINANCE"
FLAT = SideState(quantity=0.0, entry_price=0.0, inventory_usdt=0.0, unrealized_pnl=0.0)
TRIP_REASON = "max_position_qty: measured 0.012 > limit 0.006 (short leg)"


def _close_order(side: str) -> OrderView:
    return OrderView(
        client_order_id=f"O-F-{side}",
        side="SELL" if side == "LONG" else "BUY",
        position_side=side,
        role="flatten",
        rung=None,
        order_type="LIMIT",
        price=30000.0,
        trigger_price=None,
        quantity=0.01,
        filled_qty=0.0,
        status="ACCEPTED",
    )


def snap(base: StrategySnapshot | None = None, **changes: Any) -> StrategySnapshot:
    base = base or make_snapshot()
    return msgspec.structs.replace(base, **changes)


def running() -> StrategySnapshot:
    return snap(trading_state=TradingState.RUNNING, state_reason="first bar received")


def tripped(before: StrategySnapshot, breaker: str, reason: str) -> StrategySnapshot:
    return snap(
        before,
        trading_state=TradingState.HALTED,
        state_reason=reason,
        counters=msgspec.structs.replace(
            before.counters, flattens=before.counters.flattens + (breaker != "stale_data")
        ),
        kill_switch=KillSwitchView(tripped=True, breaker=breaker, reason=reason, tripped_at=1.0),
    )


def observe(*snaps: StrategySnapshot) -> list[list[Notice]]:
    derive = NoticeDeriver(IDENTITY)
    return [derive.observe(s) for s in snaps]


# ---- what becomes a message, and how it reads -------------------------------------


def test_a_trip_is_one_message_with_breaker_measured_value_legs_and_identity() -> None:
    before = running()
    trip = tripped(before, "max_position_qty", TRIP_REASON)
    _, [notice] = observe(before, trip)
    assert notice.kind is NoticeKind.KILL_SWITCH
    assert notice.text == (
        f"[{IDENTITY}] KILL SWITCH tripped: {TRIP_REASON}; flattening both legs "
        "(long 0.05, short 0.03); trading halted until POST /start"
    )


def test_a_trip_flatten_reports_once_when_both_legs_are_flat() -> None:
    before = running()
    trip = tripped(before, "max_position_qty", TRIP_REASON)
    closing = snap(trip, long=FLAT, orders=(_close_order("SHORT"),))
    flat = snap(closing, short=FLAT, orders=())
    later = snap(flat, timestamp=flat.timestamp + 1)
    out = observe(before, trip, closing, flat, later)
    assert [len(n) for n in out] == [0, 1, 0, 1, 0]
    assert out[3][0].kind is NoticeKind.FLATTEN
    assert out[3][0].text == f"[{IDENTITY}] FLATTEN done after the kill switch: both legs flat"


def test_a_stale_data_trip_says_nothing_is_closed() -> None:
    before = running()
    reason = "stale_data: measured 5.2 > limit 5 (no quote or bar)"
    _, [notice] = observe(before, tripped(before, "stale_data", reason))
    assert "grid orders cancelled (no blind close on a stale feed)" in notice.text
    assert reason in notice.text and "flattening" not in notice.text


def test_a_second_trip_after_a_rearm_is_posted_again() -> None:
    before = running()
    first = tripped(before, "max_drawdown", "max_drawdown: measured 0.1 > limit 0.05")
    rearmed = snap(first, trading_state=TradingState.RUNNING, kill_switch=KillSwitchView())
    second = snap(
        tripped(rearmed, "max_drawdown", "max_drawdown: measured 0.2 > limit 0.05"),
        kill_switch=KillSwitchView(tripped=True, breaker="max_drawdown", reason="x", tripped_at=9),
    )
    out = observe(before, first, rearmed, second)
    assert [[n.kind for n in o] for o in out] == [
        [],
        [NoticeKind.KILL_SWITCH],
        [],
        [NoticeKind.KILL_SWITCH],
    ]


def test_a_halt_without_a_trip_is_posted_and_a_restored_halt_is_not() -> None:
    halted = snap(running(), trading_state=TradingState.HALTED, state_reason="node stopping")
    [notice] = observe(running(), halted)[1]
    assert notice.kind is NoticeKind.HALT
    assert notice.text == f"[{IDENTITY}] HALTED: node stopping (was running)"
    # The first snapshot of a run that restored a halt from the state directory: nothing new.
    restored = tripped(running(), "max_position_qty", TRIP_REASON)
    assert observe(restored, snap(restored, timestamp=restored.timestamp + 1)) == [[], []]


def _flatten_audit(**result: Any) -> dict[str, Any]:
    """An audit record as ``ops/audit.command_audit_sink`` writes it for a flatten."""
    return {
        "action": "flatten",
        "params": {"side": "both"},
        "outcome": "ok",
        "result": {
            "status": "flattening",
            "side": "both",
            "cancelled_orders": 28,
            "closing_positions": ["LONG", "SHORT"],
            "already_closing": [],
            "trading_state": "flattening",
            **result,
        },
        "command_id": 7,
        "source": "bus",
        "client": "127.0.0.1",
        "key_used": True,
        "request_id": "4f2a",
    }


def test_an_operator_flatten_posts_who_asked_which_side_and_its_end() -> None:
    derive = NoticeDeriver(IDENTITY)
    notice = derive.on_audit(_flatten_audit())
    assert notice is not None and notice.kind is NoticeKind.FLATTEN
    assert notice.text == (
        f"[{IDENTITY}] FLATTEN both requested by 127.0.0.1 (req 4f2a): closing LONG and "
        "SHORT, 28 orders cancelled; trading flattening"
    )
    # The snapshots of that flatten: the start is the audit record's, only the end is theirs.
    before = running()
    reason = "flatten by 127.0.0.1 (api key) req 4f2a"
    started = snap(
        before,
        trading_state=TradingState.FLATTENING,
        state_reason=reason,
        counters=msgspec.structs.replace(before.counters, flattens=before.counters.flattens + 1),
        orders=(_close_order("LONG"), _close_order("SHORT")),
    )
    progress = snap(started, long=FLAT, orders=(_close_order("SHORT"),))
    done = snap(
        progress,
        trading_state=TradingState.PAUSED,
        state_reason=f"flattened; {reason}",
        short=FLAT,
        orders=(),
    )
    out = observe(before, started, progress, done)
    assert [len(n) for n in out] == [0, 0, 0, 1]
    assert out[3][0].text == (
        f"[{IDENTITY}] FLATTEN done: flattened; {reason} (long 0, short 0); trading paused"
    )


def test_a_flatten_with_nothing_open_or_already_closing_says_so() -> None:
    derive = NoticeDeriver(IDENTITY)
    idle = derive.on_audit(_flatten_audit(closing_positions=[], trading_state="paused"))
    assert idle is not None and "(req 4f2a): nothing open to close, 28 orders" in idle.text
    again = derive.on_audit(_flatten_audit(closing_positions=[], already_closing=["LONG"]))
    assert again is not None and "(req 4f2a): LONG already closing, 28 orders" in again.text


def test_only_executed_flattens_in_the_audit_trail_are_posted() -> None:
    derive = NoticeDeriver(IDENTITY)
    assert derive.on_audit({**_flatten_audit(), "outcome": "conflict"}) is None
    assert derive.on_audit({**_flatten_audit(), "action": "stop"}) is None
    assert derive.on_audit({"action": "flatten", "outcome": "unauthorized"}) is None


def test_a_flatten_the_strategy_starts_by_itself_is_posted() -> None:
    before = running()
    flipped = snap(
        before,
        trading_state=TradingState.FLATTENING,
        state_reason="LONG leg holds a SHORT position",
    )
    [notice] = observe(before, flipped)[1]
    assert notice.text == (
        f"[{IDENTITY}] FLATTEN started: LONG leg holds a SHORT position (long 0.05, short 0.03)"
    )


def test_a_flatten_that_gives_up_says_what_is_left() -> None:
    flattening = snap(running(), trading_state=TradingState.FLATTENING, state_reason="flatten by x")
    gave_up = snap(
        flattening,
        trading_state=TradingState.PAUSED,
        state_reason="flatten of LONG gave up: the venue refused 3 closes",
        short=FLAT,
    )
    [notice] = observe(flattening, gave_up)[1]
    assert notice.text == (
        f"[{IDENTITY}] FLATTEN ended with positions left: flatten of LONG gave up: the venue "
        "refused 3 closes (long 0.05, short 0); trading paused"
    )


def test_ordinary_snapshots_post_nothing() -> None:
    a = running()
    b = snap(a, long=FLAT, timestamp=a.timestamp + 1, throttle=0.3)
    c = snap(b, trading_state=TradingState.PAUSED, state_reason="stop by operator")
    assert observe(a, b, c) == [[], [], []]


def test_the_body_is_slack_and_discord_json_and_never_too_long() -> None:
    body = orjson.loads(render(Notice(NoticeKind.HALT, "HALTED: x")))
    assert body == {"text": "HALTED: x", "content": "HALTED: x"}
    long = orjson.loads(render(Notice(NoticeKind.HALT, "y" * 5000)))
    assert len(long["content"]) == MAX_TEXT and long["text"] == long["content"]


# ---- settings --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("", "is empty"),
        ("ftp://hooks.example/T/SECRETX", "must be an http:// or https:// URL (scheme is 'ftp')"),
        ("hooks.example/T/SECRETX", "(scheme is none)"),
        ("https:///T/SECRETX", "has no host"),
        ("https://hooks.example:70000/T/SECRETX", "has an invalid port (https://hooks.example"),
        ("https://hooks.example/T /SECRETX", "must not contain spaces"),
    ],
)
def test_a_bad_url_names_the_problem_without_its_secret(url: str, problem: str) -> None:
    with pytest.raises(ValueError) as err:
        check_webhook_url(url)
    assert problem in str(err.value) and "SECRETX" not in str(err.value)


def test_settings_never_show_the_secret() -> None:
    url = "https://discord.com:443/api/webhooks/1/SECRETX?wait=true"
    settings = NotifySettings(url=url, name="box-1")
    assert settings.target == "https://discord.com:443"
    ops = OpsSettings(notify=settings)
    for text in (repr(settings), str(settings), repr(ops)):
        assert "SECRETX" not in text and "discord.com" in text
    assert NotifySettings(url="http://[::1]/x").target == "http://[::1]"
    with pytest.raises(ValueError, match="timeout"):
        NotifySettings(url=url, timeout=0)


# ---- delivery over real HTTP -----------------------------------------------------------


def _counts(metrics: OpsMetrics) -> dict[tuple[str, str], float]:
    return notification_counts(metrics.render()[0].decode())


def _notifier(url: str, **settings: Any) -> tuple[Notifier, OpsMetrics]:
    metrics = OpsMetrics("BTCUSDT-PERP.BINANCE")
    options: dict[str, Any] = {"name": "box-1", "backoff": 0.01, **settings}
    return Notifier(NotifySettings(url=url, **options), "BTCUSDT-PERP.BINANCE", metrics), metrics


async def _settled(notifier: Notifier) -> None:
    """Until the worker has finished everything queued (the loop keeps running)."""
    for _ in range(500):
        if notifier.settled:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the notifier never settled")


async def test_trips_reach_the_receiver_in_order_and_are_counted() -> None:
    with webhook_receiver() as receiver:
        notifier, metrics = _notifier(receiver.url)
        await notifier.start()
        try:
            before = running()
            notifier.on_snapshot(before)
            notifier.on_snapshot(tripped(before, "max_position_qty", TRIP_REASON))
            notifier.submit(Notice(NoticeKind.HALT, "second"))
            await _settled(notifier)
        finally:
            await notifier.close()
    assert receiver.received == [
        {"text": t, "content": t}
        for t in (
            f"[{IDENTITY}] KILL SWITCH tripped: {TRIP_REASON}; flattening both legs "
            "(long 0.05, short 0.03); trading halted until POST /start",
            "second",
        )
    ]
    counts = _counts(metrics)
    assert counts[("delivered", "kill_switch")] == 1 and counts[("delivered", "halt")] == 1
    assert counts[("delivered", "flatten")] == 0
    assert sum(v for (k, _), v in counts.items() if k != "delivered") == 0


async def test_a_500_is_retried_then_counted_as_failed() -> None:
    with webhook_receiver(status=500) as receiver:
        notifier, metrics = _notifier(receiver.url, retries=2)
        await notifier.start()
        notifier.submit(Notice(NoticeKind.FLATTEN, "FLATTEN started"))
        await _settled(notifier)
        assert receiver.attempts == 3  # the first try and two retries
        receiver.status = 200  # the receiver recovers: the next message goes through
        notifier.submit(Notice(NoticeKind.FLATTEN, "FLATTEN done"))
        await _settled(notifier)
        await notifier.close()
    assert receiver.texts() == ["FLATTEN done"]
    counts = _counts(metrics)
    assert counts[("failed", "http_status")] == 1 and counts[("delivered", "flatten")] == 1


async def _post_one(url: str, **settings: Any) -> dict[tuple[str, str], float]:
    """Start a notifier, have it deliver one halt notice, stop it; the counts after."""
    notifier, metrics = _notifier(url, **settings)
    await notifier.start()
    notifier.submit(Notice(NoticeKind.HALT, "HALTED"))
    await _settled(notifier)
    await notifier.close()
    return _counts(metrics)


async def test_a_404_is_not_retried() -> None:
    with webhook_receiver(status=404) as receiver:
        counts = await _post_one(receiver.url, retries=3)
    assert receiver.attempts == 1
    assert counts[("failed", "http_status")] == 1


async def test_nobody_listening_is_a_connection_failure() -> None:
    counts = await _post_one(f"http://127.0.0.1:{free_port()}/services/{SECRET}", retries=1)
    assert counts[("failed", "connection")] == 1
    assert counts[("delivered", "halt")] == 0


async def test_a_receiver_slower_than_the_timeout_is_a_timeout_failure() -> None:
    with webhook_receiver(delay=2.0) as receiver:
        counts = await _post_one(receiver.url, timeout=0.2, retries=0)
    assert counts[("failed", "timeout")] == 1


async def test_a_full_queue_drops_the_oldest_and_counts_it() -> None:
    with webhook_receiver() as receiver:
        notifier, metrics = _notifier(receiver.url, queue_size=2)
        for i in range(5):  # the worker is not running yet: everything waits
            notifier.submit(Notice(NoticeKind.HALT, f"m{i}"))
        assert notifier.waiting == 2
        assert _counts(metrics)[("dropped", "queue_full")] == 3
        await notifier.start()
        await _settled(notifier)
        await notifier.close()
    assert receiver.texts() == ["m3", "m4"]


async def test_a_shutdown_counts_what_could_not_be_sent() -> None:
    notifier, metrics = _notifier(f"http://127.0.0.1:{free_port()}/x", retries=10, backoff=5.0)
    await notifier.start()
    for i in range(3):
        notifier.submit(Notice(NoticeKind.HALT, f"m{i}"))
    await asyncio.sleep(0.1)  # the first is between retries
    await notifier.close(grace=0.1)
    notifier.submit(Notice(NoticeKind.HALT, "after close"))  # never raises
    assert _counts(metrics)[("dropped", "shutdown")] == 4
    assert notifier.waiting == 0


def test_the_snapshot_listener_only_queues() -> None:
    """On the strategy's path (no loop running, no worker): it queues and returns."""
    notifier, _ = _notifier(f"http://127.0.0.1:1/services/{SECRET}")
    before = running()
    notifier.on_snapshot(before)
    notifier.on_snapshot(tripped(before, "max_drawdown", "max_drawdown: measured 1 > limit 0.5"))
    notifier.on_snapshot(snap(before, timestamp=before.timestamp + 9))
    assert notifier.waiting == 1

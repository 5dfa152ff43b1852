"""The exchange's market (same price models as paper mode), signatures, faults and state file."""

from __future__ import annotations

import json
from decimal import Decimal as D
from pathlib import Path

import pytest

from hedgegrid_ops.venues.binance_local.auth import Credentials, check_signed, sign
from hedgegrid_ops.venues.binance_local.engine import AccountConfig, Engine
from hedgegrid_ops.venues.binance_local.errors import BinanceError
from hedgegrid_ops.venues.binance_local.faults import DelayRule, FailRule, Faults
from hedgegrid_ops.venues.binance_local.market import (
    FundingDue,
    KlineClosed,
    Market,
    Quote,
    TickEvent,
    klines,
)
from hedgegrid_ops.venues.binance_local.spec import BTCUSDT
from hedgegrid_ops.venues.binance_local.state import (
    KLINES_KEPT,
    StateError,
    load,
    restored_klines,
    save,
    snapshot,
    validate,
)
from hedgegrid_ops.venues.sim.process import FUNDING_INTERVAL_NS, MINUTE_NS, PriceProcess
from hedgegrid_ops.venues.sim.replay import ReplayProcess, load_binance_klines

DATA = Path(__file__).resolve().parents[1] / "data" / "btcusdt_1m_300.csv"
START = 20 * FUNDING_INTERVAL_NS  # a funding time (multiple of 8 h)


def market(start_ns: int = START, ticks: int = 6, seed: int = 3) -> Market:
    return Market(
        PriceProcess(seed=seed, initial_price=60000.0, start_ns=start_ns, ticks_per_minute=ticks)
    )


def test_market_replays_the_paper_price_process_tick_for_tick() -> None:
    m = market()
    twin = PriceProcess(seed=3, initial_price=60000.0, start_ns=START, ticks_per_minute=6)
    events = m.advance(START + 3 * MINUTE_NS)
    ticks = [e for e in events if isinstance(e, TickEvent)]
    expected = [t for _ in range(3) for t in twin.next_minute().ticks]
    assert [(t.ts_ns, float(t.trade.price), float(t.quote.bid)) for t in ticks] == [
        (t.ts_ns, t.trade_price, t.bid) for t in expected
    ]


def test_exactly_one_closed_kline_per_minute_matching_its_ticks() -> None:
    m = market()
    seen: list[KlineClosed] = []
    prices: list[D] = []
    for step in range(1, 40):  # uneven steps: events must not depend on how time is sliced
        for e in m.advance(START + step * MINUTE_NS // 7):
            if isinstance(e, KlineClosed):
                seen.append(e)
            elif isinstance(e, TickEvent):
                prices.append(e.trade.price)
    assert [k.kline.open_ms for k in seen] == [
        (START + i * MINUTE_NS) // 1_000_000 for i in range(5)
    ]
    first = seen[0].kline
    assert (first.open, first.close) == (prices[0], prices[5])
    assert first.high == max(prices[:6]) and first.low == min(prices[:6])
    assert first.trades == 6 and first.close_ms == first.open_ms + 59_999


def test_funding_is_due_once_per_funding_time() -> None:
    m = market(start_ns=START - 2 * MINUTE_NS)
    events = m.advance(START + 3 * MINUTE_NS)
    due = [e for e in events if isinstance(e, FundingDue)]
    assert [e.ts_ns for e in due] == [START]
    # The rate published by the minute that closed just before the funding time.
    twin = PriceProcess(
        seed=3, initial_price=60000.0, start_ns=START - 2 * MINUTE_NS, ticks_per_minute=6
    )
    twin.next_minute()
    assert due[0].rate == D(repr(twin.next_minute().funding_rate)) and due[0].mark > 0
    assert m.next_funding_ns == START + FUNDING_INTERVAL_NS
    later = [e for e in m.advance(START + 10 * MINUTE_NS) if isinstance(e, FundingDue)]
    assert later == []


def test_advance_limit_resumes_where_it_stopped() -> None:
    whole = market().advance(START + 5 * MINUTE_NS)
    m = market()
    parts = []
    while chunk := m.advance(START + 5 * MINUTE_NS, limit=4):
        parts.extend(chunk)
    assert parts == whole


def test_klines_history_honours_start_end_and_limit_and_aggregates() -> None:
    m = market()
    m.warm_up(START + 30 * MINUTE_NS)
    history = m.history()
    assert len(history) == 30
    ms = START // 1_000_000
    rows = klines(history, "1m", ms + 60_000 * 10, ms + 60_000 * 14, 500)
    assert [r.open_ms for r in rows] == [ms + 60_000 * i for i in range(10, 15)]
    assert [r.open_ms for r in klines(history, "1m", ms, None, 3)] == [
        ms,
        ms + 60_000,
        ms + 120_000,
    ]
    assert klines(history, "1m", None, None, 2) == history[-2:]
    five = klines(history, "5m", None, None, 500)
    assert len(five) == 6 and five[1].open == history[5].open and five[1].close == history[9].close
    assert five[1].high == max(r.high for r in history[5:10])
    assert five[1].close_ms == five[1].open_ms + 300_000 - 1


def test_replay_source_drives_the_market() -> None:
    rows = load_binance_klines(DATA)
    m = Market(ReplayProcess(rows, ticks_per_minute=4, seed=1))
    m.warm_up(rows[9].open_time_ns + MINUTE_NS)
    assert len(m.history()) == 10
    assert m.history()[3].high == D(repr(rows[3].high))


# -- signatures -------------------------------------------------------------------------------

CREDS = Credentials("k", "s3cret")


def signed(query: str, secret: str = "s3cret") -> tuple[str, dict[str, str]]:
    raw = f"{query}&signature={sign(secret, query)}"
    return raw, dict(p.split("=", 1) for p in raw.split("&"))


def test_signature_over_the_raw_query_is_accepted() -> None:
    raw, params = signed("symbol=BTCUSDT&origClientOrderIdList=%5B%22a%22%5D&timestamp=1000")
    check_signed(CREDS, raw, "", params, now_ms=1500)


@pytest.mark.parametrize(
    ("query", "secret", "now", "code"),
    [
        ("symbol=X&timestamp=1000", "wrong", 1500, -1022),
        ("symbol=X&timestamp=1000", "s3cret", 7000, -1021),  # older than recvWindow 5000
        ("symbol=X&timestamp=1000&recvWindow=100", "s3cret", 1200, -1021),
        ("symbol=X&timestamp=5000", "s3cret", 1000, -1021),  # from the future
        ("symbol=X&timestamp=1000&recvWindow=70000", "s3cret", 1000, -1130),
        ("symbol=X", "s3cret", 1000, -1102),
    ],
)
def test_bad_signatures_and_timestamps(query: str, secret: str, now: int, code: int) -> None:
    raw, params = signed(query, secret)
    with pytest.raises(BinanceError) as info:
        check_signed(CREDS, raw, "", params, now_ms=now)
    assert info.value.code == code


# -- fault switches --------------------------------------------------------------------------


def test_fail_rules_count_down_per_path_and_method() -> None:
    faults = Faults(failures=[FailRule("/fapi/v1/order", 2, 429, -1003, "slow down", "POST")])
    assert faults.take_failure("GET", "/fapi/v1/order") is None
    assert faults.take_failure("POST", "/fapi/v1/time") is None
    first = faults.take_failure("POST", "/fapi/v1/order")
    assert first is not None and (first.status, first.code) == (429, -1003)
    assert faults.take_failure("POST", "/fapi/v1/order") is not None
    assert faults.take_failure("POST", "/fapi/v1/order") is None


def test_delay_rules() -> None:
    faults = Faults(delays=[DelayRule(0.5, "/a", 1), DelayRule(0.2)])
    assert faults.delay_for("/a") == 0.5
    assert faults.delay_for("/a") == 0.2
    assert faults.delay_for("/b") == 0.2


# -- state file ------------------------------------------------------------------------------


def busy_engine() -> Engine:
    eng = Engine({"BTCUSDT": BTCUSDT}, AccountConfig(starting_balance=D("5000")))
    eng.on_quote("BTCUSDT", Quote(D("60000.0"), D("60000.1"), D(1), D(1)), D("60000.0"))
    base = {"symbol": "BTCUSDT", "positionSide": "LONG", "side": "BUY"}
    eng.place(base | {"type": "MARKET", "quantity": "0.010"}, 1)
    eng.place(
        base
        | {
            "type": "LIMIT",
            "quantity": "0.005",
            "price": "59000.0",
            "timeInForce": "GTX",
            "newClientOrderId": "rest-1",
        },
        2,
    )
    eng.symbols["BTCUSDT"].leverage = 7
    return eng


def test_state_round_trip(tmp_path: Path) -> None:
    eng = busy_engine()
    path = tmp_path / "state.json"
    save(path, snapshot(eng))
    fresh = Engine({"BTCUSDT": BTCUSDT}, AccountConfig(starting_balance=D("5000")))
    validate(fresh, load(path), path)
    assert snapshot(fresh) == snapshot(eng)
    assert [o.client_id for o in fresh.open_orders()] == ["rest-1"]
    assert fresh.position("BTCUSDT", "LONG").amt == D("0.010")
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_state_write_is_atomic(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    save(path, {"version": 1, "good": True})
    with pytest.raises(TypeError):
        save(path, {"bad": object()})
    assert json.loads(path.read_text()) == {"version": 1, "good": True}
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_bad_state_files_are_named_errors(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    assert load(path) is None
    path.write_text("{not json")
    with pytest.raises(StateError, match="not valid JSON"):
        load(path)
    path.write_text('{"version": 1}')
    with pytest.raises(StateError, match="malformed state"):
        validate(Engine({"BTCUSDT": BTCUSDT}), load(path), path)


def test_fast_warm_up_ends_in_the_same_market_as_advancing() -> None:
    until = START + 37 * MINUTE_NS + MINUTE_NS // 3  # mid-minute, past no funding time
    warmed, advanced = (
        market(start_ns=START - 3 * MINUTE_NS),
        market(start_ns=START - 3 * MINUTE_NS),
    )
    warmed.warm_up(until)
    advanced.advance(until)
    assert warmed.history() == advanced.history() and len(warmed.history()) == 40
    assert (warmed.quote, warmed.next_funding_ns) == (advanced.quote, advanced.next_funding_ns)
    later = until + 3 * MINUTE_NS
    assert warmed.advance(later) == advanced.advance(later)


def test_state_keeps_the_latest_klines(tmp_path: Path) -> None:
    m = market()
    m.warm_up(START + 300 * MINUTE_NS)
    path = tmp_path / "state.json"
    save(path, snapshot(busy_engine(), m.history()))
    kept = restored_klines(load(path))
    assert kept == m.history()[-KLINES_KEPT:] and len(kept) == KLINES_KEPT
    fresh = market(start_ns=START + 400 * MINUTE_NS)
    fresh.warm_up(START + 402 * MINUTE_NS)
    fresh.prepend_history(kept)
    assert fresh.history()[:KLINES_KEPT] == kept and len(fresh.history()) == KLINES_KEPT + 2

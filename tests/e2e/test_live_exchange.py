"""Live mode end to end: the real program (``run --mode live``) against the local exchange.

One exchange subprocess and one program subprocess are shared by the module (each
start costs seconds), and the tests run in file order as one story: trade, compare
with the exchange, survive every fault switch, restart mid-position, flatten. What
the program says (``/status``, ``/metrics``, ``/orders``, ``/health``, its log) is
always checked against what the exchange says over its own signed REST API.

Two soaks (``make soak``, left out of ``make test``) repeat what one test does once
with the market moving: 15 flattens under forced races, and 4 restarts.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from hedgegrid_ops.grid.order_ids import parse_client_order_id
from tests.exchange_support import BinanceRest, ExchangeProcess
from tests.support.program import ROOT, RunningService, program, program_env, running_program

pytestmark = pytest.mark.e2e

# Distinctive credentials: every output of the program is searched for them.
KEY = "live-e2e-key-7f3a9c1d2b"
SECRET = "live-e2e-secret-5e8b0a4f6c"
OPS_KEY = "ops-e2e-control-key-41d2-9b7e-0c55-aa31"
SPEED = "6"  # simulated minutes per wall second: 6 bars a second, funding every 80 s
TOL = 1e-6


def _preflight_refusal(tmp_path: Path, exchange: ExchangeProcess, secret: str) -> str:
    text = (ROOT / "configs" / "venues" / "binance_local.yaml").read_text()
    text = text.replace("http://127.0.0.1:18765", exchange.info["rest_url"])
    text = text.replace("ws://127.0.0.1:18765", exchange.info["ws_url"])
    venue = tmp_path / "venue.yaml"
    venue.write_text(text)
    proc = subprocess.run(
        [
            *program("run", "--mode", "live", "--venue-config", str(venue)),
            "--log-dir",
            str(tmp_path / "logs"),
        ],
        cwd=ROOT,
        env=program_env(BINANCE_LOCAL_API_KEY=KEY, BINANCE_LOCAL_API_SECRET=secret),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr  # start-up refused: one line, exit 2
    assert KEY not in proc.stderr + proc.stdout and secret not in proc.stderr + proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_one_way_account_is_refused_and_left_alone(tmp_path: Path) -> None:
    with ExchangeProcess(
        "--one-way", "--api-key", KEY, env={"HEDGEGRID_EXCHANGE_API_SECRET": SECRET}
    ) as exchange:
        line = _preflight_refusal(tmp_path, exchange, SECRET)
        assert "one-way position mode" in line and "Hedge Mode" in line
        assert "never changes it" in line
        dual = BinanceRest(exchange.info["rest_url"], KEY, SECRET).ok(
            "GET", "/fapi/v1/positionSide/dual"
        )
        assert dual["dualSidePosition"] is False  # not switched behind the owner's back


def test_wrong_secret_is_refused_before_trading(tmp_path: Path) -> None:
    with ExchangeProcess("--api-key", KEY, env={"HEDGEGRID_EXCHANGE_API_SECRET": SECRET}) as ex:
        line = _preflight_refusal(tmp_path, ex, "not-the-secret-0000")
        assert "refused the API key or its signature" in line


@dataclass
class Live:
    exchange: ExchangeProcess
    rest: BinanceRest
    venue_yaml: Path
    tmp: Path
    service: RunningService | None = None
    runs: int = 0
    earlier: list[RunningService] = field(default_factory=list)  # the runs before this one

    def start(self) -> RunningService:
        self.runs += 1
        if self.service is not None:
            self.earlier.append(self.service)
        ctx = running_program(
            self.tmp / f"run{self.runs}",
            "--mode",
            "live",
            "--venue-config",
            str(self.venue_yaml),
            "--max-bar-age",
            "20",
            env={
                "BINANCE_LOCAL_API_KEY": KEY,
                "BINANCE_LOCAL_API_SECRET": SECRET,
                "HEDGEGRID_API_KEY": OPS_KEY,
            },
        )
        self.service = ctx.__enter__()
        self._ctx = ctx
        return self.service

    def stop(self) -> int:
        assert self.service is not None
        code = self.service.stop(timeout=30)
        self._ctx.__exit__(None, None, None)
        err = self.service.proc.stderr.read() if self.service.proc.stderr else ""
        assert code == 0, f"program exit {code}: {err[-3000:]}"
        return code

    # ---- the program
    def api(self, method: str, path: str, body: dict | None = None) -> tuple[int, Any]:
        assert self.service is not None
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.service.api_url + path,
            data=data,
            method=method,
            headers={"X-API-Key": OPS_KEY, "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                raw = resp.read()
                status = resp.status
        except urllib.error.HTTPError as exc:
            raw, status = exc.read(), exc.code
        text = raw.decode()
        return status, (json.loads(text) if text.startswith(("{", "[")) else text)

    def status(self) -> dict:
        code, body = self.api("GET", "/status")
        assert code == 200, body
        return body

    def health(self) -> dict:
        return self.api("GET", "/health")[1]

    def logs(self, event: str) -> list[dict]:
        assert self.service is not None
        return [r for r in list(self.service.lines) if r.get("event") == event]

    def logs_of_every_run(self, event: str) -> list[dict]:
        runs = [*self.earlier, *([self.service] if self.service else [])]
        return [r for run in runs for r in list(run.lines) if r.get("event") == event]

    # ---- the exchange
    def admin(self, path: str, body: dict | None = None) -> Any:
        return self.exchange.admin(path, body)

    def positions(self) -> dict[str, dict]:
        rows = self.rest.ok("GET", "/fapi/v3/positionRisk", {"symbol": "BTCUSDT"})
        return {r["positionSide"]: r for r in rows if r["positionSide"] in ("LONG", "SHORT")}

    def open_orders(self) -> list[dict]:
        return self.rest.ok("GET", "/fapi/v1/openOrders", {"symbol": "BTCUSDT"})

    def income(self, kind: str) -> float:
        rows = self.rest.ok("GET", "/fapi/v1/income", {"incomeType": kind, "limit": 1000})
        return sum(float(r["income"]) for r in rows)


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60.0, every: float = 0.2):
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    tmp = tmp_path_factory.mktemp("live")
    exchange = ExchangeProcess(
        "--speed",
        SPEED,
        "--seed",
        "11",
        "--ticks-per-minute",
        "12",
        # The first funding settlement 20 s after the start (120 simulated minutes at
        # speed 6) instead of anywhere up to 80 s, depending on the wall clock.
        "--minutes-to-funding",
        "120",
        "--api-key",
        KEY,
        env={"HEDGEGRID_EXCHANGE_API_SECRET": SECRET},
    ).start()
    url, ws = exchange.info["rest_url"], exchange.info["ws_url"]
    text = (ROOT / "configs" / "venues" / "binance_local.yaml").read_text()
    text = text.replace("http://127.0.0.1:18765", url).replace("ws://127.0.0.1:18765", ws)
    text = text.replace("max_data_gap_seconds: 15", "max_data_gap_seconds: 3")
    venue_yaml = tmp / "binance_local.yaml"
    venue_yaml.write_text(text + "rest_timeout_seconds: 2\n")
    state = Live(exchange, BinanceRest(url, KEY, SECRET), venue_yaml, tmp)
    try:
        state.start()
        yield state
    finally:
        service = state.service
        if service is not None and service.proc.poll() is None:
            state.stop()
        elif service is not None and service.proc.stderr is not None:
            # The program died under a test: keep what it said next to its logs.
            died = f"exit {service.proc.returncode}\n{service.proc.stderr.read()}"
            (service.log_dir / "stderr.txt").write_text(died)
        exchange.stop()


def _settle(live: Live) -> None:
    """Freeze the market and wait until the program's view stops changing."""
    live.admin("/admin/market/pause")
    previous = None
    for _ in range(40):
        time.sleep(0.5)
        s = live.status()
        now = (s["balance_usdt"], s["positions"], s["counters"]["fills_buy_maker"])
        if now == previous:
            return
        previous = now
    raise AssertionError("the program's state did not settle")


def _assert_matches_exchange(live: Live) -> None:
    s = live.status()
    account = live.rest.ok("GET", "/fapi/v2/account")
    positions = live.positions()
    assert s["balance_usdt"] == pytest.approx(float(account["totalWalletBalance"]), abs=TOL)
    for side in ("long", "short"):
        ours, theirs = s["positions"][side], positions[side.upper()]
        assert ours["quantity"] == pytest.approx(abs(float(theirs["positionAmt"])), abs=TOL)
        if ours["quantity"]:
            assert ours["entry_price"] == pytest.approx(float(theirs["entryPrice"]), rel=1e-9)
    c = s["counters"]
    assert c["fees_paid_usdt"] == pytest.approx(-live.income("COMMISSION"), abs=TOL)
    assert c["funding_paid_usdt"] == pytest.approx(-live.income("FUNDING_FEE"), abs=TOL)
    # Nautilus's realized PnL includes commissions; Binance books them separately.
    exchange_realized = live.income("REALIZED_PNL") + live.income("COMMISSION")
    assert s["pnl"]["realized"] == pytest.approx(exchange_realized, abs=1e-5)
    metrics = live.api("GET", "/metrics")[1]
    for name, value in (
        ("hedgegrid_fees_paid_usdt", c["fees_paid_usdt"]),
        ("hedgegrid_funding_paid_usdt", c["funding_paid_usdt"]),
        ("hedgegrid_realized_pnl_usdt", s["pnl"]["realized"]),
    ):
        line = next(ln for ln in metrics.splitlines() if ln.startswith(name + "{"))
        assert float(line.rsplit(" ", 1)[1]) == pytest.approx(value, abs=1e-5), line


def test_trades_and_matches_the_exchange(live: Live) -> None:
    wait_for("healthy", lambda: live.health().get("status") == "healthy")
    wait_for(
        "fills on both legs and a funding settlement",
        lambda: (
            (s := live.status())["counters"]["funding_payments"] >= 1
            and s["positions"]["long"]["quantity"] > 0
            and s["positions"]["short"]["quantity"] > 0
        ),
        timeout=240,
        every=1.0,
    )
    assert live.logs("funding_settled"), "funding paid must come from the venue's account update"
    assert not live.logs("funding_settlement_estimated")
    _settle(live)
    _assert_matches_exchange(live)
    _assert_orders_agree(live)
    # That check lets the market move again when it is done: freeze it once more, or a
    # fill between reading the history and reading the venue's trades tells them apart.
    _settle(live)
    try:
        _assert_history_matches_exchange(live)
    finally:
        live.admin("/admin/market/resume")


def _assert_history_matches_exchange(live: Live) -> None:
    """The history in the state directory books the venue's trades, funding and fees."""
    funding, fees = -live.income("FUNDING_FEE"), -live.income("COMMISSION")
    assert funding != 0
    days = wait_for(
        "GET /pnl/daily to book the funding and the fees",
        lambda: (
            (days := live.api("GET", "/pnl/daily")[1]["days"])
            and sum(d["funding"] for d in days) == pytest.approx(funding, abs=TOL)
            and sum(d["fees"] for d in days) == pytest.approx(fees, abs=TOL)
            and days
        ),
        timeout=10,
    )
    venue_trades = live.rest.ok("GET", "/fapi/v1/userTrades", {"symbol": "BTCUSDT", "limit": 1000})
    assert sum(d["fills"] for d in days) == len(venue_trades)
    booked = live.api("GET", "/fills?limit=1000")[1]["fills"]
    assert sorted(f["trade_id"] for f in booked) == sorted(str(t["id"]) for t in venue_trades)


def _degraded_then_healthy(
    live: Live,
    cause: Callable[[], None],
    reason: str,
    recover: Callable[[], None] | None = None,
) -> str:
    """Pull a fault switch, see /health degraded for ``reason``, recover, see it healthy."""
    cause()
    seen = wait_for(
        f"/health degraded ({reason})",
        lambda: (
            (h := live.health()).get("status") == "degraded"
            and reason in h.get("reason", "")
            and h["reason"]
        ),
        timeout=30,
        every=0.05,
    )
    if recover is not None:
        recover()
    wait_for("/health healthy again", lambda: live.health().get("status") == "healthy", 60)
    return seen


def test_stale_feed_degrades_and_recovers(live: Live) -> None:
    reason = _degraded_then_healthy(
        live,
        lambda: live.admin("/admin/market/pause"),
        "no market data from the venue",
        recover=lambda: live.admin("/admin/market/resume"),
    )
    assert "more than the 3s allowed" in reason


def test_order_submit_5xx_and_429_degrade_and_recover(live: Live) -> None:
    def _force_new_orders() -> None:
        # A throttle change reshapes the grid: cancels and new submissions at once.
        code, body = live.api("POST", "/set-throttle", {"throttle": 0.0})
        assert code == 200, body

    def _restore_throttle() -> None:
        live.admin("/admin/clear")
        live.api("POST", "/set-throttle", {"throttle": 1.0})

    for status, code in ((503, -1001), (429, -1003)):

        def fail(status: int = status, code: int = code) -> None:
            live.admin(
                "/admin/fail",
                {
                    "path": "/fapi/v1/order",
                    "method": "POST",
                    "count": 20,  # more than the adapter's 4 attempts of every new order
                    "status": status,
                    "code": code,
                },
            )
            _force_new_orders()

        reason = _degraded_then_healthy(live, fail, "venue rest", recover=_restore_throttle)
        assert f"HTTP {status}" in reason and f"code {code}" in reason
        # Every submission either got through on a retry or was rejected: none is left
        # in flight, and the program's open orders are exactly the exchange's.
        _assert_orders_agree(live)


def _in_flight(live: Live) -> set[str]:
    return {
        o["client_order_id"]
        for o in live.api("GET", "/orders")[1]["orders"]
        if o["status"] in ("SUBMITTED", "PENDING_UPDATE", "PENDING_CANCEL")
    }


def _assert_orders_agree(live: Live) -> None:
    """Every order in flight resolves; then, market frozen, our open orders = the exchange's."""
    # A submission the venue never saw resolves only through Nautilus's in-flight
    # check (5 queries 6 s apart): wait for that with the market still moving, or the
    # stale-data breaker (30 s) would trip on the frozen market first.
    stuck = _in_flight(live)
    wait_for("in-flight orders resolved", lambda: not stuck & _in_flight(live), 60, every=0.5)
    _settle(live)
    wait_for("in-flight orders resolved", lambda: not _in_flight(live), timeout=60, every=0.5)
    ours = {o["client_order_id"] for o in live.api("GET", "/orders")[1]["orders"]}
    at_venue = {
        o["clientOrderId"] for o in live.open_orders() if parse_client_order_id(o["clientOrderId"])
    }
    assert ours == at_venue
    live.admin("/admin/market/resume")


def test_delayed_responses_time_out_and_orders_resolve(live: Live) -> None:
    def delay() -> None:
        live.admin("/admin/delay", {"seconds": 4, "path": "/fapi/v1/order", "count": 3})
        live.api("POST", "/set-throttle", {"throttle": 0.0})  # new orders at once

    def restore() -> None:
        live.api("POST", "/set-throttle", {"throttle": 1.0})

    reason = _degraded_then_healthy(live, delay, "venue rest", recover=restore)
    assert "got no answer in time" in reason
    live.admin("/admin/clear")
    # Nothing stays in flight: Nautilus's in-flight check queries what timed out.
    _assert_orders_agree(live)


@pytest.mark.parametrize("switch", ["user_ws_drop", "listen_key_expiry"])
def test_user_stream_loss_degrades_reconciles_and_recovers(live: Live, switch: str) -> None:
    outages = len([r for r in live.logs("venue_connectivity") if r["channel"] == "user_stream"])

    def cause() -> None:
        # Slow the reconciliation's REST call so the recovery window is observable.
        live.admin("/admin/delay", {"seconds": 1.5, "path": "/fapi/v1/openOrders", "count": 1})
        if switch == "user_ws_drop":
            live.admin("/admin/ws/drop", {"kind": "user"})
        else:
            live.admin("/admin/listen-key/expire")

    reason = _degraded_then_healthy(live, cause, "venue user stream")
    assert "reconciling" in reason
    events = [r for r in live.logs("venue_connectivity") if r["channel"] == "user_stream"]
    assert len(events) >= outages + 2 and events[-1]["up"] is True
    live.admin("/admin/clear")
    # The reconciliation ran while the market moved (and its order query was slowed):
    # the legs it left must still be the venue's, fill for fill.
    _settle(live)
    _assert_legs_match(live)
    live.admin("/admin/market/resume")


def _assert_legs_match(live: Live) -> None:
    s, positions = live.status(), live.positions()
    for side in ("long", "short"):
        theirs = float(positions[side.upper()]["positionAmt"])
        assert s["positions"][side]["quantity"] == pytest.approx(abs(theirs), abs=TOL), (
            side,
            s["positions"],
            positions,
        )


def test_market_stream_drop_is_survived(live: Live) -> None:
    reason = _degraded_then_healthy(
        live, lambda: live.admin("/admin/ws/drop", {"kind": "market"}), "venue market stream"
    )
    assert "market data stream dropped" in reason
    bars = live.status()["counters"]["bars_processed"]
    wait_for("bars again", lambda: live.status()["counters"]["bars_processed"] > bars + 3, 30)


def test_rejections_are_counted_not_looped(live: Live) -> None:
    before = live.status()["counters"]
    live.admin("/admin/reject-next-order", {"code": -2019})
    wait_for(
        "-2019 counted",
        lambda: (
            live.status()["counters"]["orders_rejected_margin"] > before["orders_rejected_margin"]
        ),
        timeout=30,
    )
    live.admin("/admin/reject-next-order", {"code": -5022})
    wait_for(
        "-5022 counted",
        lambda: (
            live.status()["counters"]["orders_rejected_post_only"]
            > before["orders_rejected_post_only"]
        ),
        timeout=30,
    )
    time.sleep(2)  # a dozen bars: a post-only reject is re-placed once a bar, not in a loop
    c = live.status()["counters"]
    # One injected each; a natural post-only race is possible, a retry loop would be dozens.
    assert c["orders_rejected_post_only"] <= before["orders_rejected_post_only"] + 3
    assert c["orders_rejected_margin"] == before["orders_rejected_margin"] + 1
    assert live.logs("orders_rejected_insufficient_margin")
    metrics = live.api("GET", "/metrics")[1]
    assert 'reason="insufficient_margin"' in metrics


def _no_duplicates_and_exits_cover(live: Live) -> None:
    orders = live.open_orders()
    tags = [parse_client_order_id(o["clientOrderId"]) for o in orders]
    ours = [(o, t) for o, t in zip(orders, tags, strict=True) if t is not None]
    grid = Counter((t.side, t.level) for _, t in ours if t.role.value == "grid")
    assert all(n == 1 for n in grid.values()), grid
    positions = live.positions()
    for side in ("LONG", "SHORT"):
        exit_qty = sum(
            float(o["origQty"]) - float(o["executedQty"])
            for o, t in ours
            if t.side.value == side and t.role.value == "take_profit"
        )
        assert exit_qty == pytest.approx(abs(float(positions[side]["positionAmt"])), abs=TOL)


def test_restart_mid_position_adopts_without_duplicates(live: Live) -> None:
    wait_for(
        "an open position",
        lambda: any(float(p["positionAmt"]) for p in live.positions().values()),
        timeout=60,
    )
    # A hand-placed order on the same account: must be left alone and reported.
    price = (
        float(
            live.rest.ok("GET", "/fapi/v1/ticker/bookTicker", {"symbol": "BTCUSDT"}, signed=False)[
                "bidPrice"
            ]
        )
        * 0.9
    )
    foreign = live.rest.ok(
        "POST",
        "/fapi/v1/order",
        {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "positionSide": "LONG",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": "0.002",
            "price": f"{price:.1f}",
            "newClientOrderId": "manual-by-hand-1",
        },
    )
    live.admin("/admin/market/pause")  # nothing fills while the program is away
    assert live.stop() == 0
    kept = live.open_orders()
    assert all(
        (t := parse_client_order_id(o["clientOrderId"])) is None or t.role.value != "grid"
        for o in kept
    ), "a stop cancels grid orders"
    assert any(o["clientOrderId"] == "manual-by-hand-1" for o in kept)
    exits_kept = {o["clientOrderId"] for o in kept if parse_client_order_id(o["clientOrderId"])}
    assert exits_kept, "exits are kept at the exchange by a stop"

    live.start()
    adopted = wait_for("adoption logged", lambda: live.logs("venue_state_adopted"), 60)
    assert set(adopted[0]["orders"]) == exits_kept
    foreign_log = live.logs("foreign_orders_left_alone")
    assert foreign_log and foreign_log[0]["orders"] == ["manual-by-hand-1"]
    live.admin("/admin/market/resume")
    wait_for("healthy after restart", lambda: live.health().get("status") == "healthy", 60)
    time.sleep(3)  # a few bars of grid maintenance after adoption
    _settle(live)
    _no_duplicates_and_exits_cover(live)
    s = live.status()
    positions = live.positions()
    for side in ("long", "short"):
        theirs = positions[side.upper()]
        assert s["positions"][side]["quantity"] == pytest.approx(
            abs(float(theirs["positionAmt"])), abs=TOL
        )
        if s["positions"][side]["quantity"]:
            # Nautilus books an adopted leg with a synthetic fill whose price is rounded
            # to the instrument's precision, so the entry matches to rounding, not exactly.
            assert s["positions"][side]["entry_price"] == pytest.approx(
                float(theirs["entryPrice"]), rel=1e-6
            )
    assert any(o["clientOrderId"] == "manual-by-hand-1" for o in live.open_orders())
    assert foreign["clientOrderId"] == "manual-by-hand-1"
    listed = live.api("GET", "/orders")[1]
    assert [o["client_order_id"] for o in listed["foreign_orders"]] == ["manual-by-hand-1"]
    assert listed["foreign_orders"][0]["role"] == "foreign"
    assert "manual-by-hand-1" not in {o["client_order_id"] for o in listed["orders"]}
    live.admin("/admin/market/resume")


def _legs_signed_right(positions: dict[str, dict]) -> bool:
    """Hedge legs: LONG never below zero, SHORT never above."""
    return float(positions["LONG"]["positionAmt"]) >= 0 >= float(positions["SHORT"]["positionAmt"])


def _covered_legs(live: Live) -> set[str]:
    """Legs that hold a position and have a working order of ours that would reduce it."""
    held = {side for side, p in live.positions().items() if float(p["positionAmt"])}
    closing = {"LONG": "SELL", "SHORT": "BUY"}
    return {
        o["positionSide"]
        for o in live.open_orders()
        if o["positionSide"] in held
        and o["side"] == closing[o["positionSide"]]
        and parse_client_order_id(o["clientOrderId"])
    }


def _flatten_while_the_market_moves(live: Live) -> None:
    """Flatten both legs with take profits working and the market moving, and check it.

    Take profits can fill while the closes and the cancels are in flight: the close
    must never exceed what the venue holds, and a refused close must not end the
    flatten in failure. Both are forced: every cancel reaches the book a second late
    (the take profits keep working, and can fill, while the flatten waits on them),
    and the venue refuses the first close with -2022, as it would a close that a fill
    still on its way had made too large.
    """
    live.admin("/admin/market/resume")
    wait_for("a position with its take profit working", lambda: _covered_legs(live), 60)
    bars = live.status()["counters"]["bars_processed"]
    refused_before = len(live.logs("close_failed"))
    submitted_before = len(live.logs("order_submitted"))
    live.admin("/admin/delay", {"seconds": 1.0, "path": "/fapi/v1/order", "method": "DELETE"})
    live.admin("/admin/reject-next-order", {"code": -2022, "time_in_force": "IOC"})
    code, body = live.api("POST", "/flatten", {"side": "both"})
    assert code == 200, body
    seen: list[dict[str, dict]] = []

    def flat() -> bool:
        seen.append(live.positions())
        return all(float(p["positionAmt"]) == 0 for p in seen[-1].values())

    wait_for("flat at the exchange", flat, timeout=60, every=0.1)
    # Flat is not the end: an order whose cancel is still on its way can fill and open
    # the leg again, and the flatten closes that too before it ends (paused).
    wait_for("paused", lambda: live.status()["trading_state"] == "paused", 30)
    live.admin("/admin/clear")
    assert all(_legs_signed_right(p) for p in seen), seen
    closes = [
        r
        for r in live.logs("order_submitted")[submitted_before:]
        if (t := parse_client_order_id(r["client_order_id"])) and t.role.value == "flatten"
    ]
    refused = live.logs("close_failed")[refused_before:]
    if closes:  # (none when the take profits alone closed both legs)
        assert refused and "-2022" in refused[0]["detail"], refused
    # Still flat a dozen bars later with the market still moving: nothing of ours was
    # left to fill, and the program's view of both legs is flat too.
    wait_for(
        "bars after the flatten",
        lambda: live.status()["counters"]["bars_processed"] > bars + 12,
        30,
    )
    assert all(float(p["positionAmt"]) == 0 for p in live.positions().values())
    s = live.status()
    assert s["trading_state"] == "paused"
    assert s["positions"]["long"]["quantity"] == 0 and s["positions"]["short"]["quantity"] == 0
    ours = [o for o in live.open_orders() if parse_client_order_id(o["clientOrderId"])]
    assert ours == [], "no order of ours is left working after a flatten"
    assert not live.logs_of_every_run("leg_flipped"), "no leg ever flipped, in any run"
    assert not live.logs("flatten_failed"), live.logs("flatten_failed")


def test_flatten_leaves_the_exchange_flat(live: Live) -> None:
    _flatten_while_the_market_moves(live)


@pytest.mark.soak
def test_flatten_again_and_again_while_the_market_moves(live: Live) -> None:
    """``make soak ARGS='-k again_and_again'``: many flattens in one run, market moving."""
    wait_for("healthy", lambda: live.health().get("status") == "healthy")
    rounds = 15
    for _ in range(rounds):
        _flatten_while_the_market_moves(live)
        code, body = live.api("POST", "/start")
        assert code == 200, body
    refused = live.logs("close_failed")
    print(f"{rounds} flattens with the market moving; {len(refused)} closes refused: {refused}")


def test_sigterm_summary_and_no_secret_anywhere(live: Live) -> None:
    assert live.service is not None
    outputs = [json.dumps(live.status()), live.api("GET", "/metrics")[1]]
    outputs.append(json.dumps(live.api("GET", "/orders")[1]))
    assert live.stop() == 0
    lines = list(live.service.lines)
    assert lines[-1]["event"] == "run_summary"
    outputs.append("\n".join(json.dumps(r) for r in lines))
    stderr = live.service.proc.stderr.read() if live.service.proc.stderr else ""
    outputs.append(stderr)
    for run in live.tmp.glob("run*"):
        for path in run.rglob("*"):
            if path.is_file():
                outputs.append(path.read_text(errors="replace"))
    blob = "\n".join(outputs)
    assert len(blob) > 10_000  # really searched something
    for secret in (KEY, SECRET, OPS_KEY):
        assert secret not in blob


@pytest.mark.soak
def test_restarts_while_the_market_moves_adopt_the_venues_legs(live: Live) -> None:
    """``make soak ARGS='-k restarts_while'``: exits keep filling while the program is away
    and while it starts; after each start its legs must be the venue's."""
    wait_for("healthy", lambda: live.health().get("status") == "healthy")
    for _ in range(4):
        wait_for("a position with its take profit working", lambda: _covered_legs(live), 60)
        assert live.stop() == 0
        live.start()
        wait_for("healthy after restart", lambda: live.health().get("status") == "healthy", 60)
        time.sleep(1)  # a few bars with the market moving
        _settle(live)
        _assert_legs_match(live)
        _no_duplicates_and_exits_cover(live)
        live.admin("/admin/market/resume")
    assert not live.logs_of_every_run("leg_flipped")

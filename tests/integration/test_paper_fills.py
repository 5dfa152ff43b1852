"""Paper fills happen at prices the simulated market offered, even for a big flatten.

A flatten close is an immediate-or-cancel limit 100 bps through the market. On the
paper venue (Nautilus's Sandbox on a live node) its unfilled rest used to stay in the
simulated book and fill later at that 100 bps cap, tagged maker; and the book the
close met was made of the last trade's price and size on both sides. Here a real
node trades a market whose quoted top of book is smaller than the legs, the
strategy flattens both legs, and every close fill is checked against the quote that
was in force when the close reached the venue: a sell at the bid, a buy at the ask,
no more than the quoted size, as taker; the rest expires and a new close follows.

Runs in a child interpreter (Nautilus logging is once per process); the child
records every quote the venue saw and Nautilus's own order history.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import signal
import sys
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

from tests.child import drive_in_child, emit_result, run_child
from tests.support.polling import until

SPEED = 30.0
BOOK_TOP_BTC = (0.004, 0.012)  # quoted sizes smaller than the legs the grid builds
BASE_QTY = "0.01"
LEG_OVER_TOP_BTC = 0.03
MIN_CLOSABLE_BTC = 0.002  # 100 USDT minimum notional at ~60k
REQUEST_ID = "req-7e3748a38f03"


async def _scenario(log_dir: Path, built: list[Any]) -> dict[str, Any]:
    import msgspec
    from nautilus_trader.model.data import QuoteTick
    from nautilus_trader.model.enums import LiquiditySide, OrderStatus
    from nautilus_trader.model.events import OrderCanceled, OrderFilled

    from hedgegrid_ops.commands import Actor
    from hedgegrid_ops.config import load_strategy_config, load_venue_config
    from hedgegrid_ops.grid.order_ids import parse_client_order_id
    from hedgegrid_ops.grid.types import OrderRole
    from hedgegrid_ops.node import RunOptions, build_service, run_service
    from hedgegrid_ops.snapshot import TradingState
    from tests.support.program import STRATEGY_YAML, VENUE_YAML

    strategy_cfg = load_strategy_config(STRATEGY_YAML)
    strategy_cfg = msgspec.structs.replace(
        strategy_cfg,
        grid=msgspec.structs.replace(strategy_cfg.grid, base_qty=Decimal(BASE_QTY)),
        # the legs must outgrow the book; the kill switch's 0.1 BTC cap is not under test
        risk=msgspec.structs.replace(strategy_cfg.risk, max_position_qty=None),
    )
    venue = load_venue_config(VENUE_YAML)
    venue = msgspec.structs.replace(
        venue,
        market=msgspec.structs.replace(venue.market, speed=SPEED, book_top_btc=BOOK_TOP_BTC),
    )
    options = RunOptions(strategy=strategy_cfg, venue=venue, log_dir=log_dir)
    loop = asyncio.get_running_loop()
    service = build_service(options, loop)
    built.append(service)
    node, strategy = service.node, service.strategy
    iid = strategy.instrument_id

    # Every quote as the venue saw it, in publication order (the Sandbox listens on the
    # same topic, and the matching engine's clock is the ts_init of the data it last saw).
    quotes: list[tuple[int, float, float, float, float]] = []

    def on_quote(q: QuoteTick) -> None:
        quotes.append(
            (
                q.ts_init,
                float(q.bid_price),
                float(q.ask_price),
                float(q.bid_size),
                float(q.ask_size),
            )
        )

    node.kernel.msgbus.subscribe(f"data.quotes.{iid.venue}.{iid.symbol}", on_quote)
    runner = loop.create_task(run_service(service, None))
    cache = node.cache

    def legs() -> dict[str, float]:
        return {
            str(p.id).rsplit("-", 1)[1]: float(p.quantity)
            for p in cache.positions_open(instrument_id=iid)
        }

    facts: dict[str, Any] = {}
    try:
        facts["legs_big"] = await until(
            lambda: len(legs()) == 2 and min(legs().values()) >= LEG_OVER_TOP_BTC, 90
        )
        facts["legs_at_flatten"] = legs()
        # The reason as the command bus builds it for an HTTP request with this id.
        actor = Actor(client="127.0.0.1", key_used=False, request_id=REQUEST_ID)
        strategy.control_flatten("both", f"flatten by {actor}")
        facts["flat"] = await until(
            lambda: strategy.trading_state is TradingState.PAUSED and not legs(), 30
        )
        facts["state"] = strategy.trading_state.value
        facts["reason"] = strategy.state_reason
        facts["legs_after"] = legs()
        closes = []
        all_fills = []
        for order in cache.orders(strategy_id=strategy.id):
            tag = parse_client_order_id(order.client_order_id.value)
            fills = [e for e in order.events if isinstance(e, OrderFilled)]
            all_fills.extend(fills)
            if tag is None or tag.role is not OrderRole.FLATTEN:
                continue
            closes.append(
                {
                    "id": order.client_order_id.value,
                    "side": order.side_string(),
                    "qty": float(order.quantity),
                    "filled": float(order.filled_qty),
                    "status": order.status_string(),
                    "canceled": any(isinstance(e, OrderCanceled) for e in order.events),
                    "closed": order.status in (OrderStatus.FILLED, OrderStatus.CANCELED),
                    "fills": [
                        {
                            "ts": f.ts_event,
                            "px": float(f.last_px),
                            "qty": float(f.last_qty),
                            "taker": f.liquidity_side == LiquiditySide.TAKER,
                        }
                        for f in fills
                    ],
                }
            )
        facts["closes"] = closes
        facts["maker_fills_in_cache"] = sum(
            f.liquidity_side == LiquiditySide.MAKER for f in all_fills
        )
        facts["taker_fills_in_cache"] = sum(
            f.liquidity_side == LiquiditySide.TAKER for f in all_fills
        )
        c = strategy.counters
        facts["counters"] = {
            "maker": c.fills_buy_maker + c.fills_sell_maker,
            "taker": c.fills_buy_taker + c.fills_sell_taker,
        }
        facts["quotes"] = quotes
    finally:
        signal.raise_signal(signal.SIGTERM)
        await asyncio.wait_for(runner, timeout=30)
    return facts


def _quote_at(quotes: list[list[float]], ts: int) -> list[float]:
    """The last quote the venue had processed when its clock read ``ts``."""
    stamps = [q[0] for q in quotes]
    i = bisect.bisect_right(stamps, ts)
    assert i > 0, f"no quote before {ts}"
    return quotes[i - 1]


def test_a_flatten_bigger_than_the_book_fills_only_at_offered_prices() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        facts = run_child("tests.integration.test_paper_fills", tmp)
        log = [json.loads(ln) for ln in (Path(tmp) / "trading.log").read_text().splitlines()]
    assert facts["legs_big"], f"the legs never grew past the book: {facts['legs_at_flatten']}"
    quotes = facts["quotes"]
    closes = facts["closes"]
    assert closes, "the flatten sent no close"
    top = max(max(q[3], q[4]) for q in quotes)
    assert max(facts["legs_at_flatten"].values()) > top  # bigger than any quoted size

    for close in closes:
        for fill in close["fills"]:
            _ts, bid, ask, bid_size, ask_size = _quote_at(quotes, fill["ts"])
            assert fill["taker"], f"a close filled as maker: {close}"
            if close["side"] == "SELL":
                assert fill["px"] == bid and fill["qty"] <= bid_size + 1e-9, (fill, bid, bid_size)
            else:
                assert fill["px"] == ask and fill["qty"] <= ask_size + 1e-9, (fill, ask, ask_size)

    # The unfilled rest of a close expired at once (cancelled by the venue) and the
    # flatten sent a new close for it: more closes than legs, partial ones cancelled.
    partial = [c for c in closes if c["canceled"] and 0 < c["filled"] < c["qty"]]
    assert partial, closes
    assert len(closes) > len(facts["legs_at_flatten"])
    assert all(c["closed"] for c in closes), closes
    # Flat, or a sliver below the venue's minimum left for a human (the strategy says so).
    assert facts["state"] == "paused", facts["reason"]
    if not facts["flat"]:
        assert "below the venue's minimum" in facts["reason"], facts["reason"]
        assert all(qty < MIN_CLOSABLE_BTC for qty in facts["legs_after"].values()), facts

    # Every fill in the trading log carries what the venue reported about it, and every
    # fill of a close carries the request id of the flatten that caused it.
    close_ids = {c["id"] for c in closes}
    fills_logged = [e for e in log if e["event"] == "order_filled"]
    assert len(fills_logged) == facts["maker_fills_in_cache"] + facts["taker_fills_in_cache"]
    for entry in fills_logged:
        assert entry["trade_id"] and entry["venue_order_id"], entry
        assert entry["liquidity"] in ("maker", "taker") and entry["commission"] > 0, entry
        assert entry["commission_currency"] == "USDT", entry
        expected = REQUEST_ID if entry["client_order_id"] in close_ids else None
        assert entry["request_id"] == expected, entry
    sent = [e for e in log if e["event"] == "order_submitted" and e["client_order_id"] in close_ids]
    assert sent and all(e["request_id"] == REQUEST_ID for e in sent)

    # maker_ratio / fills_total{liquidity} come from these counters: they match the venue.
    assert facts["counters"] == {
        "maker": facts["maker_fills_in_cache"],
        "taker": facts["taker_fills_in_cache"],
    }


if __name__ == "__main__":  # the child: python -m tests.integration.test_paper_fills DIR
    emit_result(drive_in_child(_scenario, Path(sys.argv[1])))

"""A real TradingNode with Nautilus's own Binance adapter against the local exchange.

The exchange runs as ``python -m hedgegrid_ops exchange`` (a subprocess); the node
runs in a fresh interpreter (``python -m tests.integration.test_exchange_node URL``)
with ``BinanceLiveDataClientFactory`` / ``BinanceLiveExecClientFactory`` configured
exactly as for Binance except for URLs, key and secret. The child drives orders
through every outcome and reports what Nautilus's cache saw; the parent then checks
the exchange's own account over signed REST and compares the two.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from nautilus_trader.model.enums import OrderSide, OrderStatus, TimeInForce

from tests.child import emit_result, run_child
from tests.exchange_support import ExchangeProcess, admin
from tests.integration.exchange_node_support import (
    BAR_TYPE,
    EVENT_TIMEOUT,
    Probe,
    Seen,
    run_scenario,
    wait_for,
)
from tests.integration.exchange_node_support import IID as iid
from tests.integration.exchange_node_support import LONG_ID as long_id
from tests.integration.exchange_node_support import SHORT_ID as short_id

BALANCE = "100000"


async def trading_scenario(probe: Probe, seen: Seen, rest_url: str, token: str) -> dict:
    """Every order outcome the adapter maps: accepted, modified, cancelled, rejected
    (post-only, margin), filled, partially filled; then the LONG leg is closed."""
    out: dict[str, Any] = {}
    cache = probe.cache
    inst = cache.instrument(iid)
    out["price_precision"] = inst.price_precision
    quote = cache.quote_tick(iid)
    bid, ask = quote.bid_price.as_double(), quote.ask_price.as_double()
    fac = probe.order_factory

    # 0. Kline history for the last 30 minutes (paged by startTime/endTime).
    now = datetime.now(UTC)
    probe.request_bars(BAR_TYPE, start=now - timedelta(minutes=30), end=now)

    # 1. post-only limit far from the market: accepted, modified, cancelled.
    po = fac.limit(
        iid, OrderSide.BUY, inst.make_qty(0.01), inst.make_price(bid * 0.95), post_only=True
    )
    probe.submit_order(po, position_id=long_id)
    await wait_for(lambda: po.status == OrderStatus.ACCEPTED, EVENT_TIMEOUT, "accept", seen)
    new_price = inst.make_price(bid * 0.96)
    probe.modify_order(po, price=new_price)
    await wait_for(
        lambda: po.price == new_price and po.status == OrderStatus.ACCEPTED,
        EVENT_TIMEOUT,
        "modify",
        seen,
    )
    probe.cancel_order(po)
    await wait_for(lambda: po.status == OrderStatus.CANCELED, EVENT_TIMEOUT, "cancel", seen)
    out["post_only"] = {"venue_order_id": str(po.venue_order_id), "price": str(po.price)}

    # 2. post-only that would take: rejected as post-only.
    cross = fac.limit(
        iid, OrderSide.BUY, inst.make_qty(0.01), inst.make_price(ask * 1.01), post_only=True
    )
    probe.submit_order(cross, position_id=long_id)
    await wait_for(
        lambda: cross.status == OrderStatus.REJECTED, EVENT_TIMEOUT, "post-only reject", seen
    )

    # 3. market buy: filled as taker.
    mkt = fac.market(iid, OrderSide.BUY, inst.make_qty(0.01))
    probe.submit_order(mkt, position_id=long_id)
    await wait_for(lambda: mkt.status == OrderStatus.FILLED, EVENT_TIMEOUT, "market fill", seen)

    # 4. far too big for the margin: -2019.
    big = fac.market(iid, OrderSide.BUY, inst.make_qty(100))
    probe.submit_order(big, position_id=long_id)
    await wait_for(lambda: big.status == OrderStatus.REJECTED, EVENT_TIMEOUT, "margin reject", seen)

    # 5. a marketable limit larger than any displayed size (at most 8 BTC), sent
    #    while the market is paused so the quote cannot move away: a partial
    #    taker fill at the touch, the rest rests; after the market resumes,
    #    prints fill it as maker; what is left after two fills is cancelled.
    await asyncio.to_thread(admin, rest_url, token, "/admin/market/pause")
    await asyncio.sleep(0.5)
    quote = cache.quote_tick(iid)
    part = fac.limit(iid, OrderSide.BUY, inst.make_qty(8.5), quote.ask_price)
    probe.submit_order(part, position_id=long_id)
    await wait_for(
        lambda: part.status == OrderStatus.PARTIALLY_FILLED, EVENT_TIMEOUT, "partial", seen
    )
    #    An IOC sell of the same size on the SHORT leg: the displayed bid fills, the
    #    remainder expires.
    ioc = fac.limit(
        iid, OrderSide.SELL, inst.make_qty(8.5), quote.bid_price, time_in_force=TimeInForce.IOC
    )
    probe.submit_order(ioc, position_id=short_id)
    await wait_for(
        lambda: ioc.status == OrderStatus.EXPIRED, EVENT_TIMEOUT, "IOC remainder expired", seen
    )
    await asyncio.to_thread(admin, rest_url, token, "/admin/market/resume")
    await wait_for(lambda: len(part.trade_ids) >= 2, 30, "two fills", seen)
    if part.is_open:
        probe.cancel_order(part)
    await wait_for(
        lambda: part.status in (OrderStatus.CANCELED, OrderStatus.FILLED),
        EVENT_TIMEOUT,
        "cancel partial",
        seen,
    )

    # 6. close both legs with market orders.
    await asyncio.sleep(0.3)
    close = fac.market(iid, OrderSide.SELL, cache.position(long_id).quantity)
    probe.submit_order(close, position_id=long_id)
    close_short = fac.market(iid, OrderSide.BUY, cache.position(short_id).quantity)
    probe.submit_order(close_short, position_id=short_id)
    for leg in (long_id, short_id):
        await wait_for(lambda leg=leg: cache.position(leg).is_closed, 10, f"{leg} closed", seen)
    await wait_for(
        lambda: seen.counts["bar"] >= 2 and seen.counts["funding"] >= 2,
        30,
        "bars and funding",
        seen,
    )
    await asyncio.sleep(0.5)  # let the last ACCOUNT_UPDATE land

    orders = [po, cross, mkt, big, part, ioc, close, close_short]
    fills = [f for o in orders for f in o.events if type(f).__name__ == "OrderFilled"]
    account = cache.account_for_venue(inst.id.venue)
    legs = [cache.position(long_id), cache.position(short_id)]
    out.update(
        statuses=[o.status.name for o in orders],
        filled_qty={o.client_order_id.value: str(o.filled_qty) for o in orders},
        part_fills=len(part.trade_ids),
        part_first_fill=str(
            next(f.last_qty for f in part.events if type(f).__name__ == "OrderFilled")
        ),
        part_liquidity=[
            f.liquidity_side.name for f in part.events if type(f).__name__ == "OrderFilled"
        ],
        commissions=str(sum((f.commission.as_decimal() for f in fills), Decimal(0))),
        ioc_filled=str(ioc.filled_qty),
        positions_realized=str(sum((p.realized_pnl.as_decimal() for p in legs), Decimal(0))),
        balance_total=str(account.balance_total(inst.quote_currency).as_decimal()),
        rejections=seen.rejections,
        counts=seen.counts,
        funding_rates=seen.funding_rates[:3],
        history_bars=seen.history_bars,
    )
    return out


def run_node(rest_url: str, ws_url: str, admin_token: str) -> dict[str, Any]:
    return run_scenario(
        rest_url, ws_url, lambda probe, seen: trading_scenario(probe, seen, rest_url, admin_token)
    )


def test_nautilus_binance_adapter_trades_on_the_local_exchange() -> None:
    with ExchangeProcess(
        "--speed", "30", "--ticks-per-minute", "30", "--balance", BALANCE, "--seed", "11"
    ) as ex:
        result = run_child(
            "tests.integration.test_exchange_node",
            ex.info["rest_url"],
            ex.info["ws_url"],
            ex.info["admin_token"],
            timeout=150,
        )
        rest = ex.rest
        account = rest.ok("GET", "/fapi/v2/account")
        trades = rest.ok("GET", "/fapi/v1/userTrades", {"symbol": "BTCUSDT"})
        income = rest.ok("GET", "/fapi/v1/income", {"limit": 1000})
        risk = rest.ok("GET", "/fapi/v3/positionRisk", {"symbol": "BTCUSDT"})
        open_orders = rest.ok("GET", "/fapi/v1/openOrders", {"symbol": "BTCUSDT"})

    counts = result["counts"]
    assert all(n > 0 for n in counts.values()), counts
    assert result["price_precision"] == 2
    # 30 minutes of closed 1-minute bars (29 or 30 depending on the second it ran),
    # each once, in order.
    history = result["history_bars"]
    assert 29 <= len(history) <= 30 and history == sorted(set(history))
    assert all(b - a == 60_000_000_000 for a, b in itertools.pairwise(history))
    assert all(Decimal(r) != 0 for r in result["funding_rates"])
    *statuses, part_status, ioc_status, close_long, close_short = result["statuses"]
    assert statuses == ["CANCELED", "REJECTED", "FILLED", "REJECTED"]
    assert part_status in ("CANCELED", "FILLED") and (close_long, close_short) == (
        "FILLED",
        "FILLED",
    )
    assert ioc_status == "EXPIRED" and 0 < Decimal(result["ioc_filled"]) < Decimal("8.5")
    assert Decimal(result["part_first_fill"]) < Decimal("8.5")  # partially filled first
    post_only, margin = result["rejections"]
    assert post_only["due_post_only"] is True and "-5022" in post_only["reason"]
    assert margin["due_post_only"] is False and "-2019" in margin["reason"]
    assert result["part_fills"] >= 2
    assert result["part_liquidity"][0] == "TAKER" and "MAKER" in result["part_liquidity"][1:]

    # The exchange's account agrees with what Nautilus saw.
    commissions = sum(Decimal(t["commission"]) for t in trades)
    realized = sum(Decimal(i["income"]) for i in income if i["incomeType"] == "REALIZED_PNL")
    fees = sum(Decimal(i["income"]) for i in income if i["incomeType"] == "COMMISSION")
    assert commissions == Decimal(result["commissions"]) == -fees
    # Nautilus recomputes PnL from its own average price: equal to the exchange's
    # realized PnL + fees up to the last of 8 decimals.
    assert abs(Decimal(result["positions_realized"]) - (realized + fees)) <= Decimal("1e-6")
    # A funding time can fall inside the run (8 h pass every 16 s at speed 30); it is
    # charged only while a position is open, so it reached Nautilus before the end.
    funding = sum(Decimal(i["income"]) for i in income if i["incomeType"] == "FUNDING_FEE")
    wallet = Decimal(account["assets"][0]["walletBalance"])
    assert wallet == Decimal(BALANCE) + realized + fees + funding
    assert wallet == Decimal(result["balance_total"])
    assert {r["positionSide"]: Decimal(r["positionAmt"]) for r in risk} == {
        "LONG": Decimal(0),
        "SHORT": Decimal(0),
    }
    assert open_orders == []
    assert len(trades) == result["part_fills"] + 4  # market, IOC, two closes


if __name__ == "__main__":
    emit_result(run_node(sys.argv[1], sys.argv[2], sys.argv[3]))

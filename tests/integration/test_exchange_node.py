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
import sys
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from tests.child import emit_result, run_child
from tests.exchange_support import API_KEY, API_SECRET, ExchangeProcess, admin

BALANCE = "100000"


@dataclass
class Seen:
    counts: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(("quote", "trade", "bar", "mark", "funding"), 0)
    )
    funding_rates: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    rejections: list[dict[str, Any]] = field(default_factory=list)


def run_node(rest_url: str, ws_url: str, admin_token: str) -> dict[str, Any]:
    from nautilus_trader.adapters.binance import (
        BinanceAccountType,
        BinanceDataClientConfig,
        BinanceExecClientConfig,
        BinanceFuturesMarkPriceUpdate,
        BinanceLiveDataClientFactory,
        BinanceLiveExecClientFactory,
    )
    from nautilus_trader.config import (
        InstrumentProviderConfig,
        LiveExecEngineConfig,
        LoggingConfig,
        StrategyConfig,
        TradingNodeConfig,
    )
    from nautilus_trader.live.node import TradingNode
    from nautilus_trader.model.data import BarType, DataType
    from nautilus_trader.model.enums import OrderSide, OrderStatus
    from nautilus_trader.model.events import OrderRejected
    from nautilus_trader.model.identifiers import ClientId, InstrumentId, PositionId, TraderId
    from nautilus_trader.trading.strategy import Strategy

    iid = InstrumentId.from_str("BTCUSDT-PERP.BINANCE")
    bar_type = BarType.from_str("BTCUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL")
    long_id = PositionId(f"{iid}-LONG")
    seen = Seen()

    class Probe(Strategy):
        def __init__(self) -> None:
            super().__init__(StrategyConfig(strategy_id="ExchangeProbe-001", oms_type="HEDGING"))

        def on_start(self) -> None:
            self.subscribe_quote_ticks(iid)
            self.subscribe_trade_ticks(iid)
            self.subscribe_bars(bar_type)
            self.subscribe_mark_prices(iid)
            self.subscribe_data(
                DataType(BinanceFuturesMarkPriceUpdate, metadata={"instrument_id": iid}),
                client_id=ClientId("BINANCE"),
            )

        def on_quote_tick(self, tick) -> None:
            seen.counts["quote"] += 1

        def on_trade_tick(self, tick) -> None:
            seen.counts["trade"] += 1

        def on_bar(self, bar) -> None:
            seen.counts["bar"] += 1

        def on_mark_price(self, update) -> None:
            seen.counts["mark"] += 1

        def on_data(self, data) -> None:
            if isinstance(data, BinanceFuturesMarkPriceUpdate):
                seen.counts["funding"] += 1
                seen.funding_rates.append(str(data.funding_rate))

        def on_event(self, event) -> None:
            seen.events.append(type(event).__name__)
            if isinstance(event, OrderRejected):
                seen.rejections.append(
                    {"reason": event.reason, "due_post_only": event.due_post_only}
                )

    common: dict[str, Any] = dict(
        api_key=API_KEY,
        api_secret=API_SECRET,
        account_type=BinanceAccountType.USDT_FUTURES,
        base_url_http=rest_url,
        base_url_ws=ws_url,
        instrument_provider=InstrumentProviderConfig(load_ids=frozenset([iid])),
    )
    config = TradingNodeConfig(
        trader_id=TraderId("EXCHANGE-001"),
        logging=LoggingConfig(log_level="WARNING"),
        exec_engine=LiveExecEngineConfig(reconciliation=True),
        data_clients={"BINANCE": BinanceDataClientConfig(**common)},
        exec_clients={
            "BINANCE": BinanceExecClientConfig(
                **common, base_url_ws_stream=ws_url, use_reduce_only=False
            )
        },
        timeout_connection=20.0,
        timeout_post_stop=1.0,
    )
    holder: dict[str, Any] = {}

    async def wait_for(cond, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; events={seen.events}")
            await asyncio.sleep(0.05)

    async def main() -> dict[str, Any]:
        node = TradingNode(config=config, loop=asyncio.get_running_loop())
        holder["node"] = node
        probe = Probe()
        node.trader.add_strategy(probe)
        node.add_data_client_factory("BINANCE", BinanceLiveDataClientFactory)
        node.add_exec_client_factory("BINANCE", BinanceLiveExecClientFactory)
        node.build()
        run = asyncio.get_running_loop().create_task(node.run_async())
        out: dict[str, Any] = {}
        try:
            await wait_for(lambda: seen.counts["quote"] >= 3, 30, "quotes")
            cache = probe.cache
            inst = cache.instrument(iid)
            out["price_precision"] = inst.price_precision
            quote = cache.quote_tick(iid)
            bid, ask = quote.bid_price.as_double(), quote.ask_price.as_double()
            fac = probe.order_factory

            # 1. post-only limit far from the market: accepted, modified, cancelled.
            po = fac.limit(
                iid, OrderSide.BUY, inst.make_qty(0.01), inst.make_price(bid * 0.95), post_only=True
            )
            probe.submit_order(po, position_id=long_id)
            await wait_for(lambda: po.status == OrderStatus.ACCEPTED, 10, "accept")
            new_price = inst.make_price(bid * 0.96)
            probe.modify_order(po, price=new_price)
            await wait_for(
                lambda: po.price == new_price and po.status == OrderStatus.ACCEPTED, 10, "modify"
            )
            probe.cancel_order(po)
            await wait_for(lambda: po.status == OrderStatus.CANCELED, 10, "cancel")
            out["post_only"] = {"venue_order_id": str(po.venue_order_id), "price": str(po.price)}

            # 2. post-only that would take: rejected as post-only.
            cross = fac.limit(
                iid, OrderSide.BUY, inst.make_qty(0.01), inst.make_price(ask * 1.01), post_only=True
            )
            probe.submit_order(cross, position_id=long_id)
            await wait_for(lambda: cross.status == OrderStatus.REJECTED, 10, "post-only reject")

            # 3. market buy: filled as taker.
            mkt = fac.market(iid, OrderSide.BUY, inst.make_qty(0.01))
            probe.submit_order(mkt, position_id=long_id)
            await wait_for(lambda: mkt.status == OrderStatus.FILLED, 10, "market fill")

            # 4. far too big for the margin: -2019.
            big = fac.market(iid, OrderSide.BUY, inst.make_qty(100))
            probe.submit_order(big, position_id=long_id)
            await wait_for(lambda: big.status == OrderStatus.REJECTED, 10, "margin reject")

            # 5. a marketable limit larger than any displayed size (at most 8 BTC), sent
            #    while the market is paused so the quote cannot move away: a partial
            #    taker fill at the touch, the rest rests; after the market resumes,
            #    prints fill it as maker; what is left after two fills is cancelled.
            await asyncio.to_thread(admin, rest_url, admin_token, "/admin/market/pause")
            await asyncio.sleep(0.5)
            quote = cache.quote_tick(iid)
            part = fac.limit(iid, OrderSide.BUY, inst.make_qty(8.5), quote.ask_price)
            probe.submit_order(part, position_id=long_id)
            await wait_for(lambda: part.status == OrderStatus.PARTIALLY_FILLED, 10, "partial")
            await asyncio.to_thread(admin, rest_url, admin_token, "/admin/market/resume")
            await wait_for(lambda: len(part.trade_ids) >= 2, 30, "two fills")
            if part.is_open:
                probe.cancel_order(part)
            await wait_for(
                lambda: part.status in (OrderStatus.CANCELED, OrderStatus.FILLED),
                10,
                "cancel partial",
            )

            # 6. close the LONG leg with a market sell.
            await asyncio.sleep(0.3)
            position = cache.position(long_id)
            close = fac.market(iid, OrderSide.SELL, position.quantity)
            probe.submit_order(close, position_id=long_id)
            await wait_for(lambda: close.status == OrderStatus.FILLED, 10, "close fill")
            await wait_for(lambda: cache.position(long_id).is_closed, 10, "position closed")
            await wait_for(
                lambda: seen.counts["bar"] >= 2 and seen.counts["funding"] >= 2,
                30,
                "bars and funding",
            )
            await asyncio.sleep(0.5)  # let the last ACCOUNT_UPDATE land

            orders = [po, cross, mkt, big, part, close]
            fills = [f for o in orders for f in o.events if type(f).__name__ == "OrderFilled"]
            account = cache.account_for_venue(inst.id.venue)
            pos = cache.position(long_id)
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
                position_realized=str(pos.realized_pnl.as_decimal()),
                position_id=str(pos.id),
                balance_total=str(account.balance_total(inst.quote_currency).as_decimal()),
                rejections=seen.rejections,
                counts=seen.counts,
                funding_rates=seen.funding_rates[:3],
            )
        finally:
            await node.stop_async()
            await asyncio.sleep(0.2)
            run.cancel()
        return out

    result = asyncio.run(main())
    holder["node"].dispose()
    return result


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
    assert all(Decimal(r) != 0 for r in result["funding_rates"])
    *statuses, part_status, close_status = result["statuses"]
    assert statuses == ["CANCELED", "REJECTED", "FILLED", "REJECTED"]
    assert part_status in ("CANCELED", "FILLED") and close_status == "FILLED"
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
    assert abs(Decimal(result["position_realized"]) - (realized + fees)) <= Decimal("1e-6")
    wallet = Decimal(account["assets"][0]["walletBalance"])
    assert wallet == Decimal(BALANCE) + realized + fees == Decimal(result["balance_total"])
    assert {r["positionSide"]: Decimal(r["positionAmt"]) for r in risk} == {
        "LONG": Decimal(0),
        "SHORT": Decimal(0),
    }
    assert open_orders == []
    assert len(trades) == result["part_fills"] + 2


if __name__ == "__main__":
    emit_result(run_node(sys.argv[1], sys.argv[2], sys.argv[3]))

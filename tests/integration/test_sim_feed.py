"""A real TradingNode with the simulated feed and the sandbox execution client.

The node runs in a fresh interpreter (``python -m tests.integration.test_sim_feed``)
under its own ``asyncio.run``: Nautilus logging can be initialised only once per
process, and ``node.dispose()`` must run after the node's loop has finished.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nautilus_trader.adapters.sandbox.config import SandboxExecutionClientConfig
from nautilus_trader.config import LoggingConfig, StrategyConfig, TradingNodeConfig
from nautilus_trader.live.node import TradingNode
from nautilus_trader.model.data import (
    Bar,
    FundingRateUpdate,
    MarkPriceUpdate,
    QuoteTick,
    TradeTick,
)
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.events import OrderFilled
from nautilus_trader.model.identifiers import PositionId, TraderId
from nautilus_trader.trading.strategy import Strategy

from hedgegrid_ops.venues.sim.config import SimDataClientConfig
from hedgegrid_ops.venues.sim.data import SimMarketDataClient
from hedgegrid_ops.venues.sim.factories import (
    SandboxLiveExecClientFactory,
    SimLiveDataClientFactory,
)
from hedgegrid_ops.venues.sim.instrument import BAR_TYPE, SIM_INSTRUMENT_ID, SIM_VENUE
from tests.child import emit_result, run_child

RUN_SECONDS = 3.0
SPEED = 60.0
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Seen:
    """What the probe strategy observed; filled on the loop thread, read after the run."""

    counts: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(("quote", "trade", "bar", "mark", "funding"), 0)
    )
    last_funding: FundingRateUpdate | None = None
    bar_ts: list[int] = field(default_factory=list)
    fills: list[OrderFilled] = field(default_factory=list)


class FeedProbe(Strategy):
    """Subscribes to every type the simulator emits and buys once after a few quotes.

    The market order proves the sandbox fills from the simulator's quotes in hedge
    mode (an explicit ``-LONG`` position id), not only that data arrives.
    """

    def __init__(self, seen: Seen) -> None:
        super().__init__(StrategyConfig(strategy_id="FeedProbe-001", oms_type="HEDGING"))
        self.seen = seen
        self._ordered = False

    def on_start(self) -> None:
        self.subscribe_quote_ticks(SIM_INSTRUMENT_ID)
        self.subscribe_trade_ticks(SIM_INSTRUMENT_ID)
        self.subscribe_bars(BAR_TYPE)
        self.subscribe_mark_prices(SIM_INSTRUMENT_ID)
        self.subscribe_funding_rates(SIM_INSTRUMENT_ID)

    def on_quote_tick(self, tick: QuoteTick) -> None:
        self.seen.counts["quote"] += 1
        if not self._ordered and self.seen.counts["quote"] >= 5:
            self._ordered = True
            order = self.order_factory.market(
                instrument_id=SIM_INSTRUMENT_ID,
                order_side=OrderSide.BUY,
                quantity=self.cache.instrument(SIM_INSTRUMENT_ID).make_qty(0.002),
            )
            self.submit_order(order, position_id=PositionId(f"{SIM_INSTRUMENT_ID}-LONG"))

    def on_trade_tick(self, tick: TradeTick) -> None:
        self.seen.counts["trade"] += 1

    def on_bar(self, bar: Bar) -> None:
        self.seen.counts["bar"] += 1
        self.seen.bar_ts.append(bar.ts_event)

    def on_mark_price(self, mark_price: MarkPriceUpdate) -> None:
        self.seen.counts["mark"] += 1

    def on_funding_rate(self, funding_rate: FundingRateUpdate) -> None:
        self.seen.counts["funding"] += 1
        self.seen.last_funding = funding_rate

    def on_order_filled(self, event: OrderFilled) -> None:
        self.seen.fills.append(event)

    def on_stop(self) -> None:
        """Nothing to unwind: the probe holds no orders beyond its single market fill."""


def _node_config() -> TradingNodeConfig:
    return TradingNodeConfig(
        trader_id=TraderId("SIMTEST-001"),
        logging=LoggingConfig(log_level="WARNING"),
        data_clients={
            "SIM": SimDataClientConfig(seed=7, speed=SPEED, ticks_per_minute=8),
        },
        exec_clients={
            "BINANCE": SandboxExecutionClientConfig(
                venue="BINANCE",
                oms_type="HEDGING",
                account_type="MARGIN",
                starting_balances=["10000 USDT"],
                base_currency="USDT",
            ),
        },
        timeout_connection=5.0,
        timeout_reconciliation=2.0,
        timeout_portfolio=2.0,
        timeout_disconnection=2.0,
        timeout_post_stop=0.5,
    )


def run_probe() -> dict[str, Any]:
    """Build, run for RUN_SECONDS, stop and dispose a node; summarise what was seen."""
    seen = Seen()
    holder: dict[str, Any] = {}

    async def main() -> None:
        node = TradingNode(config=_node_config(), loop=asyncio.get_running_loop())
        holder["node"] = node
        node.add_data_client_factory("SIM", SimLiveDataClientFactory)
        node.add_exec_client_factory("BINANCE", SandboxLiveExecClientFactory)
        node.trader.add_strategy(FeedProbe(seen))
        node.build()
        holder["client"] = node.kernel.data_engine.routing_map[SIM_VENUE]
        started = time.monotonic()
        run = asyncio.create_task(node.run_async())
        await asyncio.sleep(RUN_SECONDS)
        await node.stop_async()
        await asyncio.wait_for(run, timeout=10.0)
        holder["elapsed"] = time.monotonic() - started

    asyncio.run(main())
    holder["node"].dispose()  # only valid once the loop has finished
    client = holder["client"]
    return {
        "client_type": type(client).__name__,
        "minutes": client.minutes_emitted,
        "elapsed": holder["elapsed"],
        "counts": seen.counts,
        "bar_ts": seen.bar_ts,
        "funding_interval": seen.last_funding.interval if seen.last_funding else None,
        "fills": [
            {"position_id": str(f.position_id), "qty": str(f.last_qty), "side": f.order_side.name}
            for f in seen.fills
        ],
    }


def test_node_receives_every_simulated_type_and_fills() -> None:
    # Nautilus logging can be initialised once per process and a live node refuses
    # to bypass it, so the node gets a fresh interpreter of its own.
    result = run_child("tests.integration.test_sim_feed", timeout=120)

    assert result["client_type"] == SimMarketDataClient.__name__
    counts = result["counts"]
    assert all(count > 0 for count in counts.values()), counts
    # Never faster than the configured speed, and not stalled either.
    assert 0.5 * RUN_SECONDS * SPEED <= result["minutes"] <= result["elapsed"] * SPEED + 2
    assert counts["bar"] == counts["mark"] == counts["funding"]
    assert counts["bar"] >= 0.5 * RUN_SECONDS * SPEED
    # The probe subscribes just after the feed starts, so the first minute may be partial.
    assert counts["quote"] == counts["trade"] >= 8 * (counts["bar"] - 1)
    assert result["bar_ts"] == sorted(result["bar_ts"])
    assert len(set(result["bar_ts"])) == len(result["bar_ts"])
    assert result["funding_interval"] == 480
    assert result["fills"] == [
        {"position_id": f"{SIM_INSTRUMENT_ID}-LONG", "qty": "0.002", "side": "BUY"}
    ]


if __name__ == "__main__":
    emit_result(run_probe())

"""The live-mode pieces of a TradingNode: its config, its client factories, its venue monitor.

``hedgegrid_ops.node`` stays one runner for both modes; this module is what it
asks for when the venue config says ``kind: binance``. Differences from paper:
Nautilus reconciles with the venue at start-up and after user-stream recovery
(orders, fills, positions), checks in-flight orders until they resolve, and
polls open orders periodically, so an event lost during an outage is recovered.
"""

from __future__ import annotations

from nautilus_trader.config import (
    LiveExecEngineConfig,
    LoggingConfig,
    TradingNodeConfig,
)
from nautilus_trader.live.node import TradingNode
from nautilus_trader.model.identifiers import InstrumentId, TraderId

from hedgegrid_ops.config import BinanceVenueConfig
from hedgegrid_ops.logs import get_logger
from hedgegrid_ops.venue_events import CONNECTIVITY_TOPIC, ConnectivityEvent
from hedgegrid_ops.venues.binance_live.config import (
    CLIENT_KEY,
    data_client_config,
    exec_client_config,
)
from hedgegrid_ops.venues.binance_live.factories import (
    HedgegridBinanceDataClientFactory,
    HedgegridBinanceExecClientFactory,
)
from hedgegrid_ops.venues.monitor import VenueMonitor

# Reconciliation asks for the venue's whole order history (no lookback): our exec client
# keeps only open orders and orders this run knows (see execution.py), so a lookback
# would only risk dropping old exits that are still open.
RECONCILIATION_LOOKBACK_MINS = None
OPEN_ORDER_CHECK_SECS = 15.0


def live_node_config(
    venue: BinanceVenueConfig, trader_id: TraderId, logging: LoggingConfig
) -> TradingNodeConfig:
    return TradingNodeConfig(
        trader_id=trader_id,
        logging=logging,
        exec_engine=LiveExecEngineConfig(
            reconciliation=True,
            reconciliation_lookback_mins=RECONCILIATION_LOOKBACK_MINS,
            open_check_interval_secs=OPEN_ORDER_CHECK_SECS,
            reconciliation_startup_delay_secs=5.0,
        ),
        data_clients={CLIENT_KEY: data_client_config(venue)},
        exec_clients={CLIENT_KEY: exec_client_config(venue)},
        timeout_connection=30.0,
        timeout_reconciliation=15.0,
        timeout_portfolio=10.0,
        timeout_disconnection=5.0,
        timeout_post_stop=2.0,
    )


def install_live_clients(node: TradingNode) -> None:
    """Register our Binance factories; call before ``node.build()``."""
    node.add_data_client_factory(CLIENT_KEY, HedgegridBinanceDataClientFactory)
    node.add_exec_client_factory(CLIENT_KEY, HedgegridBinanceExecClientFactory)


def attach_monitor(
    node: TradingNode, venue: BinanceVenueConfig, instrument_id: str
) -> VenueMonitor:
    """A ``VenueMonitor`` fed from the node's message bus; call after ``node.build()``."""
    log = get_logger("venue")
    monitor = VenueMonitor(max_data_gap=venue.max_data_gap_seconds)

    def on_connectivity(event: ConnectivityEvent) -> None:
        monitor.on_connectivity(event)
        (log.info if event.up else log.warning)(
            "venue_connectivity", channel=event.channel, up=event.up, detail=event.detail
        )

    iid = InstrumentId.from_str(instrument_id)
    msgbus = node.kernel.msgbus
    msgbus.subscribe(CONNECTIVITY_TOPIC, on_connectivity)
    # Any market data for the traded instrument proves the market streams are alive.
    for kind in ("quotes", "trades", "mark_prices"):
        msgbus.subscribe(f"data.{kind}.{iid.venue}.{iid.symbol}", monitor.on_market_data)
    return monitor

"""Names the operations guide fixes as a contract, copied from the guide itself.

Tests compare the code against these, so they are deliberately not imported from
``hedgegrid_ops`` (a renamed metric there must fail a test, not follow along).
"""

INSTRUMENT = "BTCUSDT-PERP.BINANCE"

# ../shared/spec/operations-guide.md, "Available Metrics": the 15 gauges.
SPEC_METRICS = (
    "hedgegrid_long_inventory_usdt",
    "hedgegrid_short_inventory_usdt",
    "hedgegrid_net_inventory_usdt",
    "hedgegrid_active_rungs_long",
    "hedgegrid_active_rungs_short",
    "hedgegrid_open_orders",
    "hedgegrid_margin_ratio",
    "hedgegrid_maker_ratio",
    "hedgegrid_funding_rate_current",
    "hedgegrid_funding_cost_1h_projected_usdt",
    "hedgegrid_realized_pnl_usdt",
    "hedgegrid_unrealized_pnl_usdt",
    "hedgegrid_total_pnl_usdt",
    "hedgegrid_uptime_seconds",
    "hedgegrid_last_bar_timestamp",
)

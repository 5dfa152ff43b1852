"""Prometheus metrics read from the latest published snapshot, at scrape time.

The strategy publishes a snapshot after bars and order/fill/position events; mirroring
every one of them into ~40 series would put that work on the strategy's path many times
per second for a scrape that comes every few seconds. So ``render`` mirrors the latest
snapshot (``update``) only when it differs from the one mirrored last, then renders.
A scrape therefore costs the strategy nothing and cannot fail into it. Each instance owns
its registry, so two services (or two tests) in one process never share series.
"""

from __future__ import annotations

import math
import os
import platform
from importlib import metadata

from aioprometheus import Counter, Gauge, Histogram, Registry

import hedgegrid_ops
from hedgegrid_ops.grid.breakers import Breaker
from hedgegrid_ops.grid.types import Regime
from hedgegrid_ops.logs import sink_stats
from hedgegrid_ops.ops.exposition import CONTENT_TYPE, LabelKeys, count, observe, render_text
from hedgegrid_ops.ops.notices import NoticeKind
from hedgegrid_ops.snapshot import StrategySnapshot, TradingState

POS_INF = float("inf")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
# Loop lag is sampled every few milliseconds, so sub-millisecond buckets matter.
LAG_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0, POS_INF)
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, POS_INF)
LAG_WINDOW = 0.5  # seconds: the lag gauge shows the worst probe of each window
KNOWN_REGIMES = tuple(r.value for r in Regime)
# Label values of the webhook notifier's counters (ops/notify.py, ops/notices.py).
NOTIFY_EVENTS = tuple(k.value for k in NoticeKind)
NOTIFY_FAILURES = ("http_status", "connection", "timeout", "error")
NOTIFY_DROPS = ("queue_full", "shutdown")

# The operations guide's 15 gauges: names are a contract with dashboards and alerts.
SPEC_GAUGES: dict[str, str] = {
    "hedgegrid_long_inventory_usdt": "Long position inventory in USDT",
    "hedgegrid_short_inventory_usdt": "Short position inventory in USDT",
    "hedgegrid_net_inventory_usdt": "Net inventory (long - short) in USDT",
    "hedgegrid_active_rungs_long": "Number of long grid rungs placed or in flight",
    "hedgegrid_active_rungs_short": "Number of short grid rungs placed or in flight",
    "hedgegrid_open_orders": "Open orders of the strategy (grid and exits)",
    "hedgegrid_margin_ratio": "Margin used / equity",
    "hedgegrid_maker_ratio": "Maker fills / all fills (1 before the first fill)",
    "hedgegrid_funding_rate_current": "Current funding rate",
    "hedgegrid_funding_cost_1h_projected_usdt": "Projected funding cost over the next hour in USDT",
    "hedgegrid_realized_pnl_usdt": "Realized PnL in USDT",
    "hedgegrid_unrealized_pnl_usdt": "Unrealized PnL in USDT",
    "hedgegrid_total_pnl_usdt": "Realized + unrealized PnL in USDT",
    "hedgegrid_uptime_seconds": "Strategy uptime in seconds as of the last snapshot",
    "hedgegrid_last_bar_timestamp": (
        "Wall-clock unix seconds of the last processed bar (0: none yet)"
    ),
}


def spec_gauge_values(snap: StrategySnapshot) -> dict[str, float]:
    """The value each spec gauge takes for ``snap`` (one place, so nothing drifts)."""
    return {
        "hedgegrid_long_inventory_usdt": snap.long.inventory_usdt,
        "hedgegrid_short_inventory_usdt": snap.short.inventory_usdt,
        "hedgegrid_net_inventory_usdt": snap.net_inventory_usdt,
        "hedgegrid_active_rungs_long": float(len(snap.long_ladder)),
        "hedgegrid_active_rungs_short": float(len(snap.short_ladder)),
        "hedgegrid_open_orders": float(snap.open_orders),
        "hedgegrid_margin_ratio": snap.margin_ratio,
        "hedgegrid_maker_ratio": snap.maker_ratio,
        "hedgegrid_funding_rate_current": snap.funding_rate,
        "hedgegrid_funding_cost_1h_projected_usdt": snap.funding_cost_1h_projected,
        "hedgegrid_realized_pnl_usdt": snap.realized_pnl,
        "hedgegrid_unrealized_pnl_usdt": snap.unrealized_pnl,
        "hedgegrid_total_pnl_usdt": snap.total_pnl,
        "hedgegrid_uptime_seconds": snap.uptime,
        # 0 rather than NaN: "(time() - last_bar) > 120" must fire when no bar ever came.
        "hedgegrid_last_bar_timestamp": snap.last_bar_time or 0.0,
    }


def _or_nan(value: float | None) -> float:
    return math.nan if value is None else value


class OpsMetrics:
    """Owns a private aioprometheus registry with every hedgegrid series."""

    def __init__(self, instrument_id: str) -> None:
        self.instrument_id = instrument_id
        self.registry = Registry()
        labels = {"instrument": instrument_id}

        def gauge(name: str, doc: str) -> Gauge:
            return Gauge(name, doc, const_labels=labels, registry=self.registry)

        def counter(name: str, doc: str) -> Counter:
            return Counter(name, doc, const_labels=labels, registry=self.registry)

        self._spec = {name: gauge(name, doc) for name, doc in SPEC_GAUGES.items()}

        self.balance = gauge("hedgegrid_balance_usdt", "Wallet balance in USDT")
        self.equity = gauge("hedgegrid_equity_usdt", "Balance + unrealized PnL in USDT")
        self.margin_used = gauge("hedgegrid_margin_used_usdt", "Margin in use in USDT")
        self.position_quantity = gauge(
            "hedgegrid_position_quantity", "Position quantity per hedge side (base units)"
        )
        self.throttle = gauge("hedgegrid_throttle", "Grid aggressiveness 0..1")
        self.trading_state = gauge(
            "hedgegrid_trading_state", "1 for the current trading state, 0 for the others"
        )
        self.regime = gauge("hedgegrid_regime", "1 for the current market regime, 0 for others")
        self.mid_price = gauge("hedgegrid_mid_price", "Mid price (NaN before the first quote)")
        self.funding_scale = gauge(
            "hedgegrid_funding_scale", "Funding guard size multiplier per hedge side"
        )

        self.bars = counter("hedgegrid_bars_processed_total", "Bars processed")
        self.orders_submitted = counter("hedgegrid_orders_submitted_total", "Orders submitted")
        self.orders_cancelled = counter("hedgegrid_orders_cancelled_total", "Orders cancelled")
        self.orders_rejected = counter(
            "hedgegrid_orders_rejected_total", "Orders rejected by the venue"
        )
        self.orders_denied = counter(
            "hedgegrid_orders_denied_total", "Orders denied by pre-trade risk checks"
        )
        self.orders_rejected_reason = counter(
            "hedgegrid_orders_rejected_by_reason_total",
            "Venue rejections by reason: insufficient_margin (-2019), post_only (-5022)",
        )
        self.fills = counter("hedgegrid_fills_total", "Fills by side and liquidity")
        self.funding_payments = counter(
            "hedgegrid_funding_payments_total",
            "Funding settlements our positions took part in (paper: estimated, not booked)",
        )
        # A gauge, not a counter: received funding makes the running net go down.
        self.funding_paid = gauge(
            "hedgegrid_funding_paid_usdt",
            "Net funding paid since start in USDT, received is negative (paper: estimated)",
        )
        self.fees_paid = gauge(
            "hedgegrid_fees_paid_usdt", "Commissions of our fills since start in USDT"
        )
        self.flattens = counter("hedgegrid_flattens_total", "Flatten operations")
        self.kill_switch_trips = counter(
            "hedgegrid_kill_switch_trips_total",
            "Kill-switch trips by breaker (kept in the state directory across restarts)",
        )
        self.kill_switch_tripped = gauge(
            "hedgegrid_kill_switch_tripped",
            "1 while a kill-switch trip holds trading halted (until POST /start), else 0",
        )
        for breaker in Breaker:  # every series from 0, so increase() sees the first trip
            self.kill_switch_trips.set({"breaker": breaker.value}, 0)
        self.market_data_age = gauge(
            "hedgegrid_market_data_age_seconds",
            "Seconds since the last quote or bar, as of the last snapshot (NaN: none yet)",
        )
        self.recenters = counter("hedgegrid_recenters_total", "Grid re-centres")
        self.fills_held = gauge(
            "hedgegrid_position_fills_held",
            "Fills Nautilus keeps in memory for the open legs (freed when a leg goes flat)",
        )
        # Unprefixed: the names Prometheus's own process collectors use, so existing
        # memory and file-descriptor dashboards and alerts work unchanged.
        self.resident_memory = Gauge(
            "process_resident_memory_bytes", "Resident memory size in bytes", registry=self.registry
        )
        self.open_fds = Gauge(
            "process_open_fds", "Number of open file descriptors", registry=self.registry
        )

        self.api_requests = counter(
            "hedgegrid_api_requests_total", "HTTP requests by route template, method and status"
        )
        self.api_duration = Histogram(
            "hedgegrid_api_request_duration_seconds",
            "HTTP request handling time",
            const_labels=labels,
            registry=self.registry,
            buckets=REQUEST_BUCKETS,
        )
        self.loop_lag = gauge(
            "hedgegrid_event_loop_lag_seconds",
            f"Largest event-loop lag the probe saw in its last {LAG_WINDOW:g} s window",
        )
        self.loop_lag_probe = Histogram(
            "hedgegrid_event_loop_lag_probe_seconds",
            "Event-loop lag per probe: how late a timer due every few ms ran",
            const_labels=labels,
            registry=self.registry,
            buckets=LAG_BUCKETS,
        )
        self._mirrored: StrategySnapshot | None = None
        self._request_keys = LabelKeys(("route", "method", "status"))
        self._duration_keys = LabelKeys(("route", "method"))
        self.stream_clients = gauge(
            "hedgegrid_event_stream_clients", "Clients connected to the /events stream"
        )
        self.stream_dropped = counter(
            "hedgegrid_event_stream_dropped_total",
            "Event stream clients disconnected by the server, by reason",
        )
        self.log_lines_written = counter(
            "hedgegrid_log_lines_written_total", "Log lines written, by sink"
        )
        self.log_lines_dropped = counter(
            "hedgegrid_log_lines_dropped_total",
            "Log lines dropped (queue full, e.g. a stdout nobody reads, or a failed write)",
        )
        self.log_sink_errors = counter(
            "hedgegrid_log_sink_errors_total", "Failed writes to a log sink, by sink"
        )
        self.log_sink_failing = gauge(
            "hedgegrid_log_sink_failing", "1 while a log sink's last write failed, by sink"
        )
        self.connections_evicted = counter(
            "hedgegrid_http_connections_evicted_total",
            "Idle or header-trickling connections closed to admit a new one (connection cap)",
        )
        self.notifications_delivered = counter(
            "hedgegrid_notifications_delivered_total",
            "Webhook notifications the receiver accepted (2xx), by event",
        )
        self.notifications_failed = counter(
            "hedgegrid_notifications_failed_total",
            "Webhook notifications given up on after their retries, by reason",
        )
        self.notifications_dropped = counter(
            "hedgegrid_notifications_dropped_total",
            "Webhook notifications dropped unsent (queue full behind a slow receiver, shutdown)",
        )
        for event in NOTIFY_EVENTS:  # every series from 0, so increase() sees the first one
            self.notifications_delivered.set({"event": event}, 0)
        for reason in NOTIFY_FAILURES:
            self.notifications_failed.set({"reason": reason}, 0)
        for reason in NOTIFY_DROPS:
            self.notifications_dropped.set({"reason": reason}, 0)
        self.build_info = gauge("hedgegrid_build_info", "Versions of this build (value is 1)")
        self.build_info.set(
            {
                "version": hedgegrid_ops.__version__,
                "nautilus_version": _dist_version("nautilus_trader"),
                "python_version": platform.python_version(),
            },
            1,
        )
        self.loop_lag.set({}, 0.0)
        self.connections_evicted.set({}, 0)
        self.stream_clients.set({}, 0)
        self.stream_dropped.set({"reason": "slow_consumer"}, 0)  # present before the first drop

    def update(self, snap: StrategySnapshot) -> None:
        """SnapshotStore listener: mirror one snapshot into every series."""
        for name, value in spec_gauge_values(snap).items():
            self._spec[name].set({}, value)
        self.balance.set({}, snap.balance_usdt)
        self.equity.set({}, snap.equity_usdt)
        self.margin_used.set({}, snap.margin_used_usdt)
        self.position_quantity.set({"side": "long"}, snap.long.quantity)
        self.position_quantity.set({"side": "short"}, snap.short.quantity)
        self.throttle.set({}, snap.throttle)
        for state in TradingState:
            self.trading_state.set({"state": state.value}, int(snap.trading_state == state))
        for regime in {*KNOWN_REGIMES, snap.regime}:
            self.regime.set({"regime": regime}, int(snap.regime == regime))
        self.mid_price.set({}, _or_nan(snap.mid_price))
        self.funding_scale.set({"side": "long"}, snap.funding_scale_long)
        self.funding_scale.set({"side": "short"}, snap.funding_scale_short)

        c = snap.counters
        self.bars.set({}, c.bars_processed)
        self.orders_submitted.set({"side": "buy"}, c.orders_submitted_buy)
        self.orders_submitted.set({"side": "sell"}, c.orders_submitted_sell)
        self.orders_cancelled.set({}, c.orders_cancelled)
        self.orders_rejected.set({}, c.orders_rejected)
        self.orders_denied.set({}, c.orders_denied)
        self.orders_rejected_reason.set({"reason": "insufficient_margin"}, c.orders_rejected_margin)
        self.orders_rejected_reason.set({"reason": "post_only"}, c.orders_rejected_post_only)
        self.fills.set({"side": "buy", "liquidity": "maker"}, c.fills_buy_maker)
        self.fills.set({"side": "buy", "liquidity": "taker"}, c.fills_buy_taker)
        self.fills.set({"side": "sell", "liquidity": "maker"}, c.fills_sell_maker)
        self.fills.set({"side": "sell", "liquidity": "taker"}, c.fills_sell_taker)
        self.funding_payments.set({}, c.funding_payments)
        self.funding_paid.set({}, c.funding_paid_usdt)
        self.fees_paid.set({}, c.fees_paid_usdt)
        self.flattens.set({}, c.flattens)
        ks = snap.kill_switch
        for breaker, trips in ks.trips.items():
            self.kill_switch_trips.set({"breaker": breaker}, trips)
        self.kill_switch_tripped.set({}, int(ks.tripped))
        self.market_data_age.set({}, _or_nan(ks.market_data_age_seconds))
        self.recenters.set({}, c.recenters)
        self.fills_held.set({}, snap.fills_held)

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Once per HTTP request: label keys are encoded once per distinct route/status."""
        count(self.api_requests, self._request_keys.key((route, method, str(status))))
        observe(self.api_duration, self._duration_keys.key((route, method)), seconds)

    def set_stream_clients(self, count: int) -> None:
        self.stream_clients.set({}, count)

    def stream_client_dropped(self, reason: str) -> None:
        self.stream_dropped.inc({"reason": reason})

    def notification_delivered(self, event: str) -> None:
        self.notifications_delivered.inc({"event": event})

    def notification_failed(self, reason: str) -> None:
        self.notifications_failed.inc({"reason": reason})

    def notification_dropped(self, reason: str) -> None:
        self.notifications_dropped.inc({"reason": reason})

    def set_loop_lag(self, seconds: float) -> None:
        self.loop_lag.set({}, seconds)

    def evicted_connection(self) -> None:
        """A listener closed an idle connection to stay under its connection cap."""
        self.connections_evicted.inc({})

    def _mirror_log_sinks(self) -> None:
        for stats in sink_stats():
            labels = {"sink": stats.name}
            self.log_lines_written.set(labels, stats.written)
            self.log_lines_dropped.set(labels, stats.dropped)
            self.log_sink_errors.set(labels, stats.errors)
            self.log_sink_failing.set(labels, int(stats.failing is not None))

    def _mirror_process(self) -> None:
        """Resident memory and open descriptors, read from procfs at scrape time.

        procfs answers from kernel memory (no disk): a few microseconds each, once per
        scrape. Off Linux the two series are simply absent."""
        try:
            with open("/proc/self/statm", "rb") as statm:
                resident_pages = int(statm.read().split()[1])
            fds = sum(1 for _ in os.scandir("/proc/self/fd"))
        except OSError:
            return
        self.resident_memory.set({}, resident_pages * PAGE_SIZE)
        self.open_fds.set({}, fds)

    def observe_loop_lag(self, seconds: float) -> None:
        self.loop_lag_probe.observe({}, seconds)

    def render(self, snapshot: StrategySnapshot | None = None) -> tuple[bytes, str]:
        """Prometheus text exposition of the registry, and its Content-Type.

        ``snapshot`` is the store's latest: mirrored here, once per new snapshot. The
        log sinks' counters are read here too: the writer threads only count."""
        self._mirror_log_sinks()
        self._mirror_process()
        if snapshot is not None and snapshot is not self._mirrored:
            self.update(snapshot)
            self._mirrored = snapshot
        return render_text(self.registry), CONTENT_TYPE


def _dist_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "unknown"

"""Build and run the paper-trading TradingNode, with the ops layer on the same loop.

Lifecycle (all on one asyncio loop, the node's own):
1. build the node, the strategy, the snapshot store and the ops service (which owns the
   command bus: its API app starts the consumer and closes the bus);
2. start the ops listeners (a port in use stops us here, before any trading);
3. run the node until ``--duration`` elapses or SIGINT/SIGTERM arrives;
4. stop the strategy, wait (bounded) for the venue to answer the cancels it sent, stop
   the node, then the listeners; dispose the node after the loop ends;
5. print a one-line JSON summary.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
from nautilus_trader.adapters.sandbox.config import SandboxExecutionClientConfig
from nautilus_trader.config import (
    CacheConfig,
    LiveExecEngineConfig,
    LiveRiskEngineConfig,
    LoggingConfig,
    TradingNodeConfig,
)
from nautilus_trader.live.node import TradingNode
from nautilus_trader.model.identifiers import TraderId

from hedgegrid_ops.config import AnyVenueConfig, BinanceVenueConfig, StrategyConfig
from hedgegrid_ops.history.recorder import record_fills
from hedgegrid_ops.history.store import DEFAULT_FILL_HISTORY_DAYS, FillHistory
from hedgegrid_ops.housekeeping import (
    DEFAULT_PURGE_INTERVAL,
    FREEZE_AFTER_SECONDS,
    archive_fills_forever,
    freeze_start_up_objects,
    purge_forever,
)
from hedgegrid_ops.logs import get_logger
from hedgegrid_ops.loop_bridge import LoopBridge
from hedgegrid_ops.ops.audit import add_audit_listener, remove_audit_listener
from hedgegrid_ops.ops.service import OpsService
from hedgegrid_ops.ops.settings import OpsSettings
from hedgegrid_ops.report.figures import Figures, figures_from_summary
from hedgegrid_ops.report.recorder import RunRecorder
from hedgegrid_ops.snapshot import SnapshotStore, StrategySnapshot
from hedgegrid_ops.state import SavedState, StateSaver, StateStore
from hedgegrid_ops.strategy import HedgeGridV1
from hedgegrid_ops.strategy.config import VenueBehaviour
from hedgegrid_ops.venues.sim.config import SimDataClientConfig
from hedgegrid_ops.venues.sim.data import REPLAY_FINISHED_TOPIC
from hedgegrid_ops.venues.sim.factories import (
    SandboxLiveExecClientFactory,
    SimLiveDataClientFactory,
)

SIM_CLIENT_KEY = "SIM"
POST_STOP_POLL = 0.005  # seconds between looks at the orders still in flight at stop


@dataclass(frozen=True)
class RunOptions:
    strategy: StrategyConfig
    venue: AnyVenueConfig
    log_dir: Path
    duration: float | None = None
    replay: Path | None = None
    hold_after_replay: bool = False
    ops: OpsSettings | None = None
    nautilus_log_level_file: str = "INFO"
    state: StateStore | None = None  # the state directory; None keeps nothing across restarts
    saved: SavedState | None = None  # what the previous run left in it
    purge_interval: float = DEFAULT_PURGE_INTERVAL  # age at which closed orders are purged
    fill_history_days: int = DEFAULT_FILL_HISTORY_DAYS  # 0: keep every fill
    log_max_bytes: int = 50 * 1024 * 1024  # Nautilus's file rotates at this size, like ours
    log_backups: int = 5


class StartupError(Exception):
    """Something stopped the service before trading began (message is one sentence)."""


TRADER_ID = TraderId("HEDGEGRID-001")

# Nautilus's cache keeps the last 10,000 ticks, bars, mark prices and funding rates per
# instrument by default. Nothing here reads that history (the strategy keeps its own
# state; the Sandbox matches on the latest quote and trade), and the fast simulated
# market fills it in minutes (60 bars a second at --speed 60): about 10 MB that kept
# RSS climbing for the first three minutes of a soak. 1,000 of each is still hours of
# live data.
PAPER_CACHE = CacheConfig(tick_capacity=1_000, bar_capacity=1_000)


def _logging(options: RunOptions) -> LoggingConfig:
    return LoggingConfig(
        log_level="OFF",  # stdout carries our JSON lines only; Nautilus logs to its file
        log_level_file=options.nautilus_log_level_file,
        log_directory=str(options.log_dir),
        log_file_name="nautilus",
        log_file_format="json",
        # At --speed 60 Nautilus writes ~15 MB a minute: unrotated, its file alone would
        # fill a disk in a day. Rotated files are named nautilus_<timestamp>.jsonl.
        log_file_max_size=options.log_max_bytes,
        log_file_max_backup_count=options.log_backups,
        log_colors=False,
    )


def node_config(options: RunOptions) -> TradingNodeConfig:
    venue = options.venue
    if isinstance(venue, BinanceVenueConfig):
        from hedgegrid_ops.venues.binance_live.node import live_node_config

        return live_node_config(venue, TRADER_ID, _logging(options))
    market = venue.market
    return TradingNodeConfig(
        trader_id=TRADER_ID,
        logging=_logging(options),
        cache=PAPER_CACHE,
        exec_engine=LiveExecEngineConfig(reconciliation=False),
        # The simulated market runs `speed` minutes per wall second, so the order rate
        # limit (Nautilus default 100/s) is scaled to stay the same per simulated second.
        risk_engine=LiveRiskEngineConfig(
            max_order_submit_rate=f"{max(100, int(100 * market.speed / 10))}/00:00:01",
            max_order_modify_rate=f"{max(100, int(100 * market.speed / 10))}/00:00:01",
        ),
        data_clients={
            SIM_CLIENT_KEY: SimDataClientConfig(
                seed=market.seed,
                speed=market.speed,
                initial_price=market.initial_price,
                ticks_per_minute=market.ticks_per_minute,
                book_top_btc=market.book_top_btc,
                replay_path=str(options.replay) if options.replay else None,
            )
        },
        exec_clients={
            venue.venue: SandboxExecutionClientConfig(
                venue=venue.venue,
                starting_balances=[f"{venue.account.starting_balance_usdt} USDT"],
                base_currency="USDT",
                oms_type="HEDGING",
                account_type="MARGIN",
                default_leverage=Decimal(venue.account.leverage),
                book_type="L1_MBP",
                bar_execution=False,
                trade_execution=True,
                use_position_ids=True,
                # Hedge mode as on Binance: exits are bound to their position id, not
                # reduce-only (the Sandbox resizes reduce-only orders to the position).
                use_reduce_only=False,
            )
        },
        timeout_connection=10.0,
        timeout_reconciliation=1.0,
        timeout_portfolio=1.0,
        timeout_disconnection=2.0,
        timeout_post_stop=0.5,
    )


def _venue_behaviour(venue: AnyVenueConfig) -> VenueBehaviour:
    if isinstance(venue, BinanceVenueConfig):
        return VenueBehaviour(
            books_funding=True,
            adopt_open_orders=True,
            keep_exits_on_stop=venue.on_stop == "keep_exits",
            legs_cannot_flip=True,  # the pre-flight check made sure of hedge mode
        )
    return VenueBehaviour()


@dataclass
class PaperService:
    """Everything one paper run owns; ``node.dispose()`` happens after the loop ends."""

    node: TradingNode
    strategy: HedgeGridV1
    store: SnapshotStore
    bridge: LoopBridge
    ops: OpsService | None
    recorder: RunRecorder
    saver: StateSaver | None = None
    history: FillHistory | None = None  # the fill history in the state directory
    # At stop, the longest wait for the venue to answer the cancels the strategy sent
    # (the node config's ``timeout_post_stop``: 0.5 s paper, 2 s live).
    post_stop_timeout: float = 0.5


def build_service(options: RunOptions, loop: asyncio.AbstractEventLoop) -> PaperService:
    log = get_logger("node")
    store = SnapshotStore(
        on_listener_error=lambda exc: log.error("snapshot_listener_failed", error=repr(exc))
    )
    bridge = LoopBridge(loop)
    config = node_config(options)
    node = TradingNode(config=config, loop=loop)
    if isinstance(options.venue, BinanceVenueConfig):
        from hedgegrid_ops.venues.binance_live.node import install_live_clients

        install_live_clients(node)
    else:
        node.add_data_client_factory(SIM_CLIENT_KEY, SimLiveDataClientFactory)
        node.add_exec_client_factory(options.venue.venue, SandboxLiveExecClientFactory)
    saver = None
    if options.state is not None:
        options.state.on_error = lambda error: log.error("state_write_failed", error=error)
        options.state.start()  # the writer thread: the loop only ever enqueues
        saver = StateSaver(options.state)
        add_audit_listener(saver.audit)  # the audit trail is also kept in the state directory
    history = FillHistory(options.state) if options.state is not None else None
    strategy = HedgeGridV1(
        options.strategy,
        reduce_only_exits=False,
        venue=_venue_behaviour(options.venue),
        store=store,
        loop_bridge=bridge,
        saved=options.saved,
        state_saver=saver,
    )
    node.trader.add_strategy(strategy)
    node.build()
    if history is not None:
        record_fills(node.kernel.msgbus, node.cache, str(strategy.id), history)
    venue_problem = None
    if isinstance(options.venue, BinanceVenueConfig):
        from hedgegrid_ops.venues.binance_live.node import attach_monitor

        venue_problem = attach_monitor(node, options.venue, options.strategy.instrument_id).problem
    ops = None
    if options.ops is not None:
        ops = OpsService(
            options.ops,
            store,
            node_running=node.is_running,
            venue_problem=venue_problem,
            history=history,
        )
        ops.bus.attach(strategy)  # without the ops layer nothing could send a command
        ops.tap(node.kernel.msgbus, str(strategy.id))  # fills and order events for /events
    configured = getattr(options.venue.account, "starting_balance_usdt", None)  # paper only
    service = PaperService(
        node,
        strategy,
        store,
        bridge,
        ops,
        # run can last for days: no per-bar list, only the running summary (bounded memory)
        recorder=RunRecorder(keep_samples=False, starting_balance=configured),
        saver=saver,
        history=history,
        post_stop_timeout=config.timeout_post_stop,
    )
    store.subscribe(service.recorder)  # per-bar samples for the summary's figures
    return service


async def run_service(
    service: PaperService,
    duration: float | None,
    hold_after_replay: bool = False,
    purge_interval: float = DEFAULT_PURGE_INTERVAL,
    fill_history_days: int = DEFAULT_FILL_HISTORY_DAYS,
) -> None:
    """Run until ``duration`` seconds pass or a stop signal arrives, then stop cleanly."""
    log = get_logger("node")
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)  # replaces the kernel's handlers: we own shutdown

    if service.ops is not None:
        await service.ops.start()  # raises OpsStartError before anything trades; logs the URLs

    stop_reason = ["signal"]

    def replay_finished(minutes: object) -> None:
        if hold_after_replay:
            log.info("replay_finished", minutes=minutes, detail="holding until a stop signal")
            return
        log.info("replay_finished", minutes=minutes, detail="no more market data; stopping")
        stop_reason[0] = "replay finished"
        stop.set()

    service.node.kernel.msgbus.subscribe(REPLAY_FINISHED_TOPIC, replay_finished)
    run_task = loop.create_task(service.node.run_async(), name="nautilus-node")
    kernel = service.node.kernel
    purger = loop.create_task(
        purge_forever(kernel.cache, kernel.clock, purge_interval), name="cache-purge"
    )
    archiver = None
    if service.history is not None and fill_history_days > 0:
        archiver = loop.create_task(
            archive_fills_forever(service.history, fill_history_days), name="fill-retention"
        )
    waiter = loop.create_task(stop.wait())

    def freeze() -> None:
        log.info("start_up_objects_frozen", objects=freeze_start_up_objects())

    freezer = loop.call_later(FREEZE_AFTER_SECONDS, freeze)
    try:
        done, _ = await asyncio.wait(
            {run_task, waiter}, timeout=duration, return_when=asyncio.FIRST_COMPLETED
        )
        if run_task in done and run_task.exception() is not None:
            raise StartupError(f"the trading node failed: {run_task.exception()}")
        log.info("shutdown", reason=stop_reason[0] if stop.is_set() else "duration elapsed")
    finally:
        waiter.cancel()
        freezer.cancel()
        purger.cancel()
        if archiver is not None:
            archiver.cancel()
        await stop_node(service)
        run_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await run_task
        service.bridge.close()
        if service.ops is not None:
            await service.ops.stop()  # also closes the command bus
        if service.saver is not None:
            remove_audit_listener(service.saver.audit)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def stop_node(service: PaperService) -> None:
    """Stop the strategy, wait until the venue has answered its cancels, then stop the node.

    Nautilus's ``stop_async`` stops the trader and then sleeps ``timeout_post_stop``
    whatever happens, so that the venue's answers to the cancels sent by the
    strategies' ``on_stop`` reach the cache and the logs before the clients
    disconnect. That fixed sleep was most of a SIGTERM's exit time (0.5 s of 0.77 s
    in paper, where the answers arrive within milliseconds). Stopping the trader here
    and waiting only while an order of ours is still in flight (submitted, or a
    cancel not yet acknowledged), bounded by the same timeout, keeps what the sleep
    is for and ends as soon as it is done; ``stop_async`` then finds the trader
    stopped and goes straight to stopping and disconnecting the clients.
    """
    node = service.node
    trader = node.trader
    if trader.is_running:  # not yet running when a signal arrives during start-up
        trader.stop()  # HedgeGridV1.on_stop: cancel the grid, halt, publish, flush snapshots
        loop = asyncio.get_running_loop()
        deadline = loop.time() + service.post_stop_timeout
        strategy_id = service.strategy.id
        while node.cache.orders_inflight_count(strategy_id=strategy_id) and (
            loop.time() < deadline
        ):
            await asyncio.sleep(POST_STOP_POLL)
        trader.check_residuals()  # what Nautilus logs after its own post-stop sleep
    await node.stop_async()


def summary(snapshot: StrategySnapshot | None, figures: Figures | None = None) -> dict[str, Any]:
    """The one-line run summary: the end state plus the same figures ``backtest`` reports."""
    if snapshot is None:
        return {"event": "run_summary", "bars_processed": 0, "detail": "no snapshot was published"}
    c = snapshot.counters
    maker = c.fills_buy_maker + c.fills_sell_maker
    out: dict[str, Any] = {
        "event": "run_summary",
        "instrument": snapshot.instrument_id,
        "trading_state": snapshot.trading_state.value,
        "orders_submitted": c.orders_submitted_buy + c.orders_submitted_sell,
        "fills": maker + c.fills_buy_taker + c.fills_sell_taker,
        "maker_fills": maker,
        "realized_pnl": round(snapshot.realized_pnl, 6),
        "unrealized_pnl": round(snapshot.unrealized_pnl, 6),
        "balance": round(snapshot.balance_usdt, 6),
        "bars_processed": c.bars_processed,
        "long_qty": snapshot.long.quantity,
        "short_qty": snapshot.short.quantity,
    }
    if figures is not None:
        for key, value in figures.to_dict().items():
            out.setdefault(key, round(value, 6) if isinstance(value, float) else value)
    return out


def run_figures(service: PaperService) -> Figures:
    """The run's figures, from the recorder (fills from the strategy's counters).

    The starting balance is the paper account's configured balance (given to the
    recorder when it was built); live, it is not configured, so the recorder takes
    the first sample's balance less the PnL realized by then.
    """
    rec = service.recorder
    return figures_from_summary(rec.summary(), rec.fill_tally(), rec.funding, rec.facts())


async def _preflight(venue: BinanceVenueConfig) -> None:
    """Live mode: check keys and hedge mode at the venue before building anything."""
    from hedgegrid_ops.venues.binance_live.credentials import load_credentials
    from hedgegrid_ops.venues.binance_live.preflight import PreflightError, check_account

    try:
        await check_account(venue, load_credentials(venue.environment))
    except PreflightError as exc:
        raise StartupError(str(exc)) from None
    get_logger("node").info("venue_preflight_ok", environment=venue.environment, hedge_mode=True)


def run_paper(options: RunOptions) -> dict[str, Any]:
    """Run one session (paper, or live when the venue config says so) and return its summary."""
    holder: dict[str, PaperService] = {}
    figures: list[Figures] = []

    async def main() -> None:
        if isinstance(options.venue, BinanceVenueConfig):
            await _preflight(options.venue)
        service = build_service(options, asyncio.get_running_loop())
        holder["service"] = service
        await run_service(
            service,
            options.duration,
            options.hold_after_replay,
            options.purge_interval,
            options.fill_history_days,
        )

    try:
        asyncio.run(main())
    finally:
        service = holder.get("service")
        if service is not None:
            try:
                figures.append(run_figures(service))
            finally:
                service.node.dispose()
    return summary(holder["service"].store.latest, figures[0] if figures else None)


def print_summary(result: dict[str, Any]) -> None:
    sys.stdout.buffer.write(orjson.dumps(result) + b"\n")
    sys.stdout.flush()

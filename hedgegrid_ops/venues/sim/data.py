"""Live market-data client that streams the simulated market into a TradingNode.

It poses as the ``BINANCE`` venue so the strategy's subscriptions route here and
the sandbox execution client (which listens on ``data.*.BINANCE.*``) fills orders
from the same quotes and trades the strategy sees.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from nautilus_trader.cache.cache import Cache
from nautilus_trader.common.component import LiveClock, MessageBus
from nautilus_trader.common.providers import InstrumentProvider
from nautilus_trader.core.data import Data
from nautilus_trader.data.messages import (
    RequestInstrument,
    RequestInstruments,
    SubscribeBars,
    SubscribeData,
    SubscribeFundingRates,
    SubscribeInstrument,
    SubscribeInstruments,
    SubscribeMarkPrices,
    SubscribeQuoteTicks,
    SubscribeTradeTicks,
    UnsubscribeBars,
    UnsubscribeData,
    UnsubscribeFundingRates,
    UnsubscribeInstrument,
    UnsubscribeInstruments,
    UnsubscribeMarkPrices,
    UnsubscribeQuoteTicks,
    UnsubscribeTradeTicks,
)
from nautilus_trader.live.data_client import LiveMarketDataClient
from nautilus_trader.model.identifiers import ClientId, InstrumentId
from nautilus_trader.model.instruments import Instrument

from hedgegrid_ops.venues.sim.config import SimDataClientConfig
from hedgegrid_ops.venues.sim.convert import close_to_data, ticks_to_data
from hedgegrid_ops.venues.sim.instrument import (
    BAR_TYPE,
    SIM_INSTRUMENT_ID,
    SIM_VENUE,
    make_btcusdt_perp,
)
from hedgegrid_ops.venues.sim.process import (
    MINUTE_NS,
    MinuteSource,
    PriceProcess,
    book_top_steps,
)
from hedgegrid_ops.venues.sim.replay import ReplayProcess, load_binance_klines

# Published (with the number of minutes replayed) when a replay has no more klines:
# ``run`` stops on it and prints its summary.
REPLAY_FINISHED_TOPIC = "hedgegrid.sim.replay_finished"
# Ticks of one simulated minute are released in this many batches spread over the
# minute's wall-clock slice: enough for the sandbox to see prices move between
# strategy reactions, few enough that fast speeds do not drown the loop in sleeps.
_BATCHES_PER_MINUTE = 3
# If the loop stalls (GC, a slow handler) we would otherwise burst all the missed
# minutes at once; beyond this lag the schedule is re-based on "now" instead.
_MAX_LAG_SECONDS = 1.0


class SimMarketDataClient(LiveMarketDataClient):
    """Streams :class:`~hedgegrid_ops.venues.sim.process.PriceProcess` (or a kline
    replay) as QuoteTick, TradeTick, 1-minute Bar, MarkPriceUpdate and FundingRateUpdate.

    Everything is emitted whether or not it was subscribed: the sandbox execution
    client consumes quotes and trades straight from the message bus without
    subscribing through the data engine, so gating on subscriptions would leave
    orders unfilled for a strategy that only subscribes to bars. Subscriptions are
    still recorded by the base class (``subscribed_*``); subscriptions to other
    instruments or bar types are logged as warnings since nothing will arrive.

    A disconnect/connect pair resumes the same market; a minute interrupted by the
    disconnect is not re-sent.

    Event times (``ts_event``) are simulated time; ``ts_init`` is the node's wall
    clock at emission, as for a real venue.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        client_id: ClientId,
        msgbus: MessageBus,
        cache: Cache,
        clock: LiveClock,
        config: SimDataClientConfig,
    ) -> None:
        if config.speed <= 0:
            raise ValueError(f"speed must be > 0, was {config.speed}")
        min_ticks = 4 if config.replay_path else 1
        if config.ticks_per_minute < min_ticks:
            raise ValueError(
                f"ticks_per_minute must be >= {min_ticks}, was {config.ticks_per_minute}"
            )
        self._instrument: Instrument = make_btcusdt_perp()
        provider = InstrumentProvider()
        provider.add(self._instrument)
        super().__init__(
            loop=loop,
            client_id=client_id,
            venue=SIM_VENUE,
            msgbus=msgbus,
            cache=cache,
            clock=clock,
            instrument_provider=provider,
            config=config,
        )
        # The sandbox copies instruments from the cache when it connects, which can
        # happen before our async _connect runs, so the cache must hold it now.
        if cache.instrument(self._instrument.id) is None:
            cache.add_instrument(self._instrument)
        self._sim_config = config
        self._stream_task: asyncio.Task | None = None
        self._source: MinuteSource | None = None
        self._minutes_emitted = 0

    @property
    def instrument(self) -> Instrument:
        """The single simulated instrument."""
        return self._instrument

    @property
    def minutes_emitted(self) -> int:
        """Simulated minutes fully published (ticks, bar, mark and funding)."""
        return self._minutes_emitted

    @property
    def is_streaming(self) -> bool:
        """True while the emission task is alive."""
        return self._stream_task is not None and not self._stream_task.done()

    # -- CONNECTION -------------------------------------------------------------------------------

    async def _connect(self) -> None:
        if self.is_streaming:
            return
        # Keep the source across reconnects so the market resumes where it paused
        # instead of replaying from the seed with event times going backwards.
        if self._source is None:
            self._source = await self._build_source()
        source = self._source
        self._handle_data(self._instrument)
        # Created directly on the node's loop rather than via `create_task`: the base
        # helper logs a warning whenever a task is cancelled, and cancelling the stream
        # is the normal way to stop it.
        task = self._loop.create_task(self._stream(source), name="sim_stream")
        task.add_done_callback(self._on_stream_done)
        self._stream_task = task

    async def _disconnect(self) -> None:
        task, self._stream_task = self._stream_task, None
        if task is not None and not task.done():
            task.cancel()
            # wait() rather than `await task`: the task's own CancelledError must not
            # be confused with this coroutine being cancelled.
            await asyncio.wait({task})
        self._log.info(f"Simulated feed stopped after {self._minutes_emitted} minutes")

    async def _build_source(self) -> MinuteSource:
        cfg = self._sim_config
        if cfg.replay_path:
            # File parsing is synchronous; keep it off the event loop.
            klines = await asyncio.to_thread(load_binance_klines, Path(cfg.replay_path))
            self._log.info(f"Replaying {len(klines)} klines from {cfg.replay_path}")
            return ReplayProcess(
                klines,
                ticks_per_minute=cfg.ticks_per_minute,
                seed=cfg.seed,
                book_top=book_top_steps(*cfg.book_top_btc),
            )
        start_ns = cfg.start_ns
        if start_ns is None:
            now = self._clock.timestamp_ns()
            start_ns = now - now % MINUTE_NS
        self._log.info(
            f"Simulated market seed={cfg.seed} speed={cfg.speed} min/s start_ns={start_ns}"
        )
        return PriceProcess(
            seed=cfg.seed,
            initial_price=cfg.initial_price,
            start_ns=start_ns,
            ticks_per_minute=cfg.ticks_per_minute,
            book_top=book_top_steps(*cfg.book_top_btc),
        )

    async def _stream(self, source: MinuteSource) -> None:
        """Publish minute after minute, sleeping so ``speed`` minutes pass per second.

        Sleeps are computed against an absolute schedule so publication time does not
        accumulate as drift; every batch awaits at least once, so the loop stays
        responsive even at very high speeds.
        """
        loop = asyncio.get_running_loop()
        batch_seconds = 1.0 / self._sim_config.speed / _BATCHES_PER_MINUTE
        deadline = loop.time()
        while not source.exhausted:
            sample = source.next_minute()
            ticks = sample.ticks
            per_batch = -(-len(ticks) // _BATCHES_PER_MINUTE)
            for b in range(_BATCHES_PER_MINUTE):
                batch = ticks[b * per_batch : (b + 1) * per_batch]
                if batch:
                    self._publish(
                        ticks_to_data(batch, self._instrument, self._clock.timestamp_ns())
                    )
                if b == _BATCHES_PER_MINUTE - 1:
                    self._publish(
                        close_to_data(sample, self._instrument, self._clock.timestamp_ns())
                    )
                    self._minutes_emitted += 1
                deadline += batch_seconds
                now = loop.time()
                if now - deadline > _MAX_LAG_SECONDS:
                    deadline = now
                await asyncio.sleep(max(0.0, deadline - now))
        self._log.info(
            f"Replay exhausted after {self._minutes_emitted} minutes; no further market data"
        )
        self._msgbus.publish(REPLAY_FINISHED_TOPIC, self._minutes_emitted)

    def _on_stream_done(self, task: asyncio.Task) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self._log.error(f"Simulated feed stopped by an error: {exc!r}")

    def _publish(self, items: list[Data]) -> None:
        for item in items:
            self._handle_data(item)

    # -- SUBSCRIPTIONS ----------------------------------------------------------------------------

    def _check_instrument(self, instrument_id: InstrumentId, what: str) -> None:
        if instrument_id != SIM_INSTRUMENT_ID:
            self._log.warning(
                f"Subscribed {what} for {instrument_id}; the simulated venue only lists "
                f"{SIM_INSTRUMENT_ID}, nothing will arrive"
            )

    async def _subscribe(self, command: SubscribeData) -> None:
        self._log.warning(f"Custom data {command.data_type} is not produced by the simulator")

    async def _unsubscribe(self, command: UnsubscribeData) -> None:
        pass

    async def _subscribe_instruments(self, command: SubscribeInstruments) -> None:
        pass  # the only instrument is static and already published on connect

    async def _unsubscribe_instruments(self, command: UnsubscribeInstruments) -> None:
        pass

    async def _subscribe_instrument(self, command: SubscribeInstrument) -> None:
        self._check_instrument(command.instrument_id, "instrument")

    async def _unsubscribe_instrument(self, command: UnsubscribeInstrument) -> None:
        pass

    async def _subscribe_quote_ticks(self, command: SubscribeQuoteTicks) -> None:
        self._check_instrument(command.instrument_id, "quotes")

    async def _unsubscribe_quote_ticks(self, command: UnsubscribeQuoteTicks) -> None:
        pass

    async def _subscribe_trade_ticks(self, command: SubscribeTradeTicks) -> None:
        self._check_instrument(command.instrument_id, "trades")

    async def _unsubscribe_trade_ticks(self, command: UnsubscribeTradeTicks) -> None:
        pass

    async def _subscribe_bars(self, command: SubscribeBars) -> None:
        if command.bar_type != BAR_TYPE:
            self._log.warning(
                f"Subscribed bars {command.bar_type}; the simulator only produces {BAR_TYPE}"
            )

    async def _unsubscribe_bars(self, command: UnsubscribeBars) -> None:
        pass

    async def _subscribe_mark_prices(self, command: SubscribeMarkPrices) -> None:
        self._check_instrument(command.instrument_id, "mark prices")

    async def _unsubscribe_mark_prices(self, command: UnsubscribeMarkPrices) -> None:
        pass

    async def _subscribe_funding_rates(self, command: SubscribeFundingRates) -> None:
        self._check_instrument(command.instrument_id, "funding rates")

    async def _unsubscribe_funding_rates(self, command: UnsubscribeFundingRates) -> None:
        pass

    # -- REQUESTS ---------------------------------------------------------------------------------

    async def _request_instrument(self, request: RequestInstrument) -> None:
        if request.instrument_id != SIM_INSTRUMENT_ID:
            self._log.warning(f"Instrument {request.instrument_id} is not listed by the simulator")
            return
        self._handle_instrument(
            self._instrument, request.id, request.start, request.end, request.params
        )

    async def _request_instruments(self, request: RequestInstruments) -> None:
        self._handle_instruments(
            SIM_VENUE, [self._instrument], request.id, request.start, request.end, request.params
        )

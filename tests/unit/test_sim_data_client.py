"""The simulated data client on a real message bus, without a full TradingNode.

A real ``MessageBus`` with a list-appending handler registered at the data
engine's endpoint stands in for the engine, so these tests see exactly what the
client publishes and when.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from nautilus_trader.cache.cache import Cache
from nautilus_trader.common.component import LiveClock, MessageBus
from nautilus_trader.core.data import Data
from nautilus_trader.model.data import Bar, FundingRateUpdate, MarkPriceUpdate
from nautilus_trader.model.identifiers import TraderId
from nautilus_trader.model.instruments import Instrument

from hedgegrid_ops.venues.sim.config import SimDataClientConfig
from hedgegrid_ops.venues.sim.convert import sample_to_data
from hedgegrid_ops.venues.sim.data import SimMarketDataClient
from hedgegrid_ops.venues.sim.factories import (
    SandboxLiveExecClientFactory,
    SimLiveDataClientFactory,
)
from hedgegrid_ops.venues.sim.instrument import SIM_INSTRUMENT_ID, SIM_VENUE, make_btcusdt_perp
from hedgegrid_ops.venues.sim.process import MINUTE_NS, PriceProcess
from tests.data.make_klines import FIXTURE_PATH, FIXTURE_ROWS

START_NS = 1_704_067_200_000_000_000


class Harness:
    """A client wired to a real bus whose data-engine endpoint records everything."""

    def __init__(self, config: SimDataClientConfig) -> None:
        self.clock = LiveClock()
        self.cache = Cache()
        self.msgbus = MessageBus(TraderId("TESTER-001"), self.clock)
        self.received: list[Data] = []
        self.msgbus.register("DataEngine.process", self.received.append)
        self.client = SimLiveDataClientFactory.create(
            loop=asyncio.get_running_loop(),
            name="SIM",
            config=config,
            msgbus=self.msgbus,
            cache=self.cache,
            clock=self.clock,
        )

    def of_type(self, cls: type) -> list[Any]:
        return [d for d in self.received if isinstance(d, cls)]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError("condition not reached in time")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        self.client.disconnect()
        await self.wait_for(lambda: not self.client.is_connected and not self.client.is_streaming)


def _without_ts_init(item: Data) -> dict[str, Any]:
    as_dict = type(item).to_dict(item)
    as_dict.pop("ts_init")
    return as_dict


async def test_instrument_in_cache_at_construction() -> None:
    h = Harness(SimDataClientConfig(start_ns=START_NS))
    assert isinstance(h.client, SimMarketDataClient)
    assert h.client.venue == SIM_VENUE
    assert h.cache.instrument(SIM_INSTRUMENT_ID) == make_btcusdt_perp()
    assert not h.received  # nothing is published before connect


async def test_stream_matches_process_and_uses_wall_clock_ts_init() -> None:
    config = SimDataClientConfig(seed=5, speed=600.0, ticks_per_minute=6, start_ns=START_NS)
    h = Harness(config)
    before = h.clock.timestamp_ns()
    h.client.connect()
    await h.wait_for(lambda: h.client.minutes_emitted >= 10)
    await h.stop()
    after = h.clock.timestamp_ns()

    assert isinstance(h.received[0], Instrument)
    market = h.received[1:]
    minutes = h.client.minutes_emitted
    # Disconnect may land mid-minute, after some ticks of the next minute.
    per_minute = 2 * 6 + 3
    assert minutes * per_minute <= len(market) < (minutes + 1) * per_minute
    expected: list[Data] = []
    instrument = make_btcusdt_perp()
    for sample in PriceProcess(5, config.initial_price, START_NS, 6).minutes(minutes + 1):
        expected.extend(sample_to_data(sample, instrument))
    expected = expected[: len(market)]
    assert [_without_ts_init(d) for d in market] == [_without_ts_init(d) for d in expected]
    assert all(before <= d.ts_init <= after for d in market)
    assert [b.ts_event for b in h.of_type(Bar)] == [
        START_NS + (i + 1) * MINUTE_NS for i in range(minutes)
    ]
    assert len(h.of_type(MarkPriceUpdate)) == len(h.of_type(FundingRateUpdate)) == minutes


async def test_pacing_follows_speed() -> None:
    speed = 100.0
    h = Harness(SimDataClientConfig(speed=speed, ticks_per_minute=4, start_ns=START_NS))
    started = time.monotonic()
    h.client.connect()
    await asyncio.sleep(0.6)
    emitted = h.client.minutes_emitted
    elapsed = time.monotonic() - started
    await h.stop()
    # Never faster than the configured speed; a loaded machine may only be slower.
    assert emitted <= speed * elapsed + 1
    assert emitted >= 0.3 * speed * 0.6


async def test_fast_stream_never_starves_the_loop() -> None:
    # Far behind schedule, the stream must still hand the loop back after every batch.
    # Counted in loop passes, not wall-clock gaps (those also measure the machine's load):
    # a task that yields with sleep(0) runs once per pass, so between two of its passes
    # the stream can have run at most two batches, i.e. finished at most one minute.
    h = Harness(SimDataClientConfig(speed=1_000_000.0, ticks_per_minute=12, start_ns=START_NS))
    per_pass: list[int] = []

    h.client.connect()
    deadline = time.monotonic() + 60
    seen = h.client.minutes_emitted
    while h.client.minutes_emitted <= 100 and time.monotonic() < deadline:
        await asyncio.sleep(0)
        per_pass.append(h.client.minutes_emitted - seen)
        seen = h.client.minutes_emitted
    await h.stop()
    assert h.client.minutes_emitted > 100
    assert max(per_pass) <= 1, f"{max(per_pass)} minutes emitted without the loop getting a turn"


async def test_start_defaults_to_wall_clock_minute() -> None:
    h = Harness(SimDataClientConfig(speed=600.0, ticks_per_minute=4))
    now = h.clock.timestamp_ns()
    h.client.connect()
    await h.wait_for(lambda: h.client.minutes_emitted >= 1)
    await h.stop()
    first_bar = h.of_type(Bar)[0]
    start = first_bar.ts_event - MINUTE_NS
    assert start % MINUTE_NS == 0
    assert now - MINUTE_NS < start <= now + MINUTE_NS


async def test_disconnect_stops_emission() -> None:
    h = Harness(SimDataClientConfig(speed=300.0, ticks_per_minute=4, start_ns=START_NS))
    h.client.connect()
    await h.wait_for(lambda: h.client.minutes_emitted >= 2)
    await h.stop()
    count = len(h.received)
    await asyncio.sleep(0.1)
    assert len(h.received) == count


async def test_replay_stops_when_file_exhausted() -> None:
    config = SimDataClientConfig(
        speed=20_000.0, ticks_per_minute=4, replay_path=str(FIXTURE_PATH), seed=1
    )
    h = Harness(config)
    h.client.connect()
    await h.wait_for(lambda: h.client.is_connected and not h.client.is_streaming, timeout=10)
    assert h.client.minutes_emitted == FIXTURE_ROWS
    bars = h.of_type(Bar)
    assert len(bars) == FIXTURE_ROWS
    first_line = FIXTURE_PATH.read_text().splitlines()[0].split(",")
    assert bars[0].ts_event == int(first_line[0]) * 1_000_000 + MINUTE_NS
    assert str(bars[0].open) == f"{float(first_line[1]):.1f}"
    assert {str(f.rate) for f in h.of_type(FundingRateUpdate)} == {"0.00010000"}
    await h.stop()


async def test_bad_replay_file_fails_connect(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("1717200000000,1,2,3\n", encoding="utf-8")
    h = Harness(SimDataClientConfig(replay_path=str(bad)))
    h.client.connect()
    await asyncio.sleep(0.2)
    assert not h.client.is_connected
    assert not h.client.is_streaming
    assert not h.received


@pytest.mark.parametrize(
    "config",
    [
        SimDataClientConfig(speed=0.0),
        SimDataClientConfig(ticks_per_minute=0),
        SimDataClientConfig(ticks_per_minute=3, replay_path="x.csv"),
    ],
)
async def test_rejects_bad_config(config: SimDataClientConfig) -> None:
    with pytest.raises(ValueError):
        Harness(config)


def test_sandbox_factory_keeps_its_name() -> None:
    # The node builder passes `portfolio` only to a factory with this exact name.
    assert SandboxLiveExecClientFactory.__name__ == "SandboxLiveExecClientFactory"

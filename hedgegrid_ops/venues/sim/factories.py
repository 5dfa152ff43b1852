"""Factories that let a TradingNode build the simulated venue from config.

The execution factory keeps the class name ``SandboxLiveExecClientFactory``: the
node builder passes ``portfolio`` only to a factory with exactly that name. It builds
:class:`~hedgegrid_ops.venues.sim.execution.SimSandboxExecutionClient`, the Sandbox
with immediate-or-cancel orders that really expire.
"""

from __future__ import annotations

import asyncio

from nautilus_trader.adapters.sandbox.config import SandboxExecutionClientConfig
from nautilus_trader.cache.cache import Cache
from nautilus_trader.common.component import LiveClock, MessageBus
from nautilus_trader.live.factories import LiveDataClientFactory, LiveExecClientFactory
from nautilus_trader.model.identifiers import ClientId
from nautilus_trader.portfolio import PortfolioFacade

from hedgegrid_ops.venues.sim.config import SimDataClientConfig
from hedgegrid_ops.venues.sim.data import SimMarketDataClient
from hedgegrid_ops.venues.sim.execution import SimSandboxExecutionClient

__all__ = ["SandboxLiveExecClientFactory", "SimLiveDataClientFactory"]


class SimLiveDataClientFactory(LiveDataClientFactory):
    """Builds :class:`SimMarketDataClient`; register under the ``data_clients`` key prefix."""

    @staticmethod
    def create(  # type: ignore[override]
        loop: asyncio.AbstractEventLoop,
        name: str,
        config: SimDataClientConfig,
        msgbus: MessageBus,
        cache: Cache,
        clock: LiveClock,
    ) -> SimMarketDataClient:
        """Return a new simulated data client whose client id is the config key ``name``."""
        return SimMarketDataClient(
            loop=loop,
            client_id=ClientId(name),
            msgbus=msgbus,
            cache=cache,
            clock=clock,
            config=config,
        )


class SandboxLiveExecClientFactory(LiveExecClientFactory):
    """Builds :class:`SimSandboxExecutionClient` (name kept: the node builder keys on it)."""

    @staticmethod
    def create(  # type: ignore[override]
        loop: asyncio.AbstractEventLoop,
        name: str,
        config: SandboxExecutionClientConfig,
        portfolio: PortfolioFacade,
        msgbus: MessageBus,
        cache: Cache,
        clock: LiveClock,
    ) -> SimSandboxExecutionClient:
        """Return a new Sandbox execution client for the simulated venue."""
        return SimSandboxExecutionClient(
            loop=loop,
            clock=clock,
            portfolio=portfolio,
            msgbus=msgbus,
            cache=cache,
            config=config,
        )

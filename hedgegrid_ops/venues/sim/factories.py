"""Factories that let a TradingNode build the simulated venue from config.

``SandboxLiveExecClientFactory`` is re-exported unchanged: the node builder passes
``portfolio`` only to a factory with exactly that class name, so wrapping or
renaming it would break paper execution.
"""

from __future__ import annotations

import asyncio

from nautilus_trader.adapters.sandbox.factory import SandboxLiveExecClientFactory
from nautilus_trader.cache.cache import Cache
from nautilus_trader.common.component import LiveClock, MessageBus
from nautilus_trader.live.factories import LiveDataClientFactory
from nautilus_trader.model.identifiers import ClientId

from hedgegrid_ops.venues.sim.config import SimDataClientConfig
from hedgegrid_ops.venues.sim.data import SimMarketDataClient

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

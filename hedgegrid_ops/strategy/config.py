"""HedgeGridConfig: the one settings object HedgeGridV1 reads, as ``self.config``.

The YAML is loaded and validated by ``hedgegrid_ops.config`` without importing
Nautilus (so a bad config fails fast, before the engine loads). This subclass of
Nautilus's strategy config carries the same sections, so the strategy reads
``self.config.grid.grid_step_bps`` the way Nautilus's own examples read theirs,
and there is no second settings attribute beside Nautilus's ``config``.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec
import nautilus_trader.config as nautilus_config

from hedgegrid_ops.config import (
    ExitsSection,
    FundingSection,
    GridSection,
    RegimeSection,
    RiskSection,
    StrategyConfig,
    ThrottleSection,
)


class HedgeGridConfig(nautilus_config.StrategyConfig, frozen=True, kw_only=True):
    """Nautilus's strategy fields plus every section of ``hedgegrid_ops.config.StrategyConfig``."""

    instrument_id: str
    bar_type: str
    grid: GridSection
    exits: ExitsSection
    regime: RegimeSection
    funding: FundingSection
    throttle: ThrottleSection
    risk: RiskSection

    @classmethod
    def from_settings(
        cls, settings: StrategyConfig, *, claim_external: bool = False
    ) -> HedgeGridConfig:
        """The validated YAML settings as Nautilus's config (sections shared, not copied).

        A section added to the YAML settings must be added here too; forgetting it
        fails loudly (unexpected keyword), never silently.
        """
        fields = msgspec.structs.asdict(settings)  # shallow: sections stay Structs
        # Live venues report orders open from an earlier run as "external"; claiming
        # the instrument routes their events to us. Only ids we issued are acted on.
        claims = [settings.instrument_id] if claim_external else None
        return cls(
            order_id_tag=settings.strategy_id.split("-", 1)[1],
            external_order_claims=claims,
            **fields,
        )


@dataclass(frozen=True)
class VenueBehaviour:
    """What the strategy does differently at a real venue (live) and in paper mode.

    ``books_funding``: the venue settles funding and reports each payment, so the
    strategy counts those instead of estimating at each funding time.
    ``adopt_open_orders``: orders and positions left at the venue by an earlier run
    are taken over (our client order ids only; anything else is reported, never touched).
    ``keep_exits_on_stop``: a node stop cancels grid orders only (exits keep protecting
    the positions), or every order of ours when False.
    ``legs_cannot_flip``: the venue keeps the hedge legs apart (Binance hedge mode: a
    LONG leg can never hold a short position), so a leg that looks flipped in our books
    means our books are wrong, and closing it "back" would open a real position. Paper
    mode's simulated venue can flip a leg, and there the flipped leg is flattened.
    """

    books_funding: bool = False
    adopt_open_orders: bool = False
    keep_exits_on_stop: bool = True
    legs_cannot_flip: bool = False

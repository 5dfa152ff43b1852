"""HedgeGridV1: the Nautilus shell around the pure grid maths in ``hedgegrid_ops.grid``."""

from hedgegrid_ops.strategy.config import HedgeGridConfig
from hedgegrid_ops.strategy.hedge_grid import HedgeGridV1

__all__ = ["HedgeGridConfig", "HedgeGridV1"]

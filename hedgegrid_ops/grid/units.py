"""Unit constants every layer uses, defined once (the grid imports nothing of ours, so this
is the lowest place all of strategy, simulator and ops can share)."""

from __future__ import annotations

from decimal import Decimal

NS_PER_SECOND = 1_000_000_000
NS_PER_MINUTE = 60 * NS_PER_SECOND
BPS_PER_UNIT = 10_000  # basis points in 1.0 (100 %)
BPS = Decimal(BPS_PER_UNIT)  # the same, for Decimal price maths

"""Shared fixtures: paths and a helper that runs the real program as a subprocess."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STRATEGY_YAML = ROOT / "configs" / "strategies" / "hedge_grid_v1.yaml"
VENUE_YAML = ROOT / "configs" / "venues" / "sim.yaml"


def program_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEDGEGRID_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def program(*args: str) -> list[str]:
    return [sys.executable, "-m", "hedgegrid_ops", *args]


@pytest.fixture
def root() -> Path:
    return ROOT

"""Repeated flattens and restarts on a fast feed never run away and always end flat.

Earlier versions of the flatten lost track of orders still on their way to the
venue: late fills flipped a leg, exits then grew it, and cancels ping-ponged with
the venue. This drives the real program the way a nervous operator would —
flatten, flatten again, start, over and over while the market moves fast — and
checks the end state in /status and the trading log.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import aiohttp
import orjson
import pytest

from tests.support.polling import poll
from tests.support.program import running_program

pytestmark = pytest.mark.e2e

CYCLES = 8
# A runaway grew a leg to hundreds of BTC; the grid itself holds a few hundredths.
MAX_SANE_LEG_BTC = 0.5


async def _storm(api: str) -> tuple[dict, float]:
    largest_leg = 0.0
    async with aiohttp.ClientSession() as http:

        async def status() -> dict:
            async with http.get(f"{api}/status") as resp:
                assert resp.status == 200
                return await resp.json()

        async def post(path: str, body: dict | None = None) -> int:
            async with http.post(f"{api}{path}", json=body) as resp:
                await resp.read()
                return resp.status

        await poll(status, lambda s: s["counters"]["fills_buy_maker"] > 0, 30, "first fills")
        for cycle in range(CYCLES):
            side = ("both", "long", "short")[cycle % 3]
            assert await post("/flatten", {"side": side}) == 200
            await asyncio.sleep(0.2)
            assert await post("/flatten", {"side": "both"}) == 200
            await poll(status, lambda s: s["trading_state"] == "paused", 20, "flatten to finish")
            assert await post("/start") == 200
            await asyncio.sleep(0.6)
            snap = await status()
            largest_leg = max(
                largest_leg,
                snap["positions"]["long"]["quantity"],
                snap["positions"]["short"]["quantity"],
            )
        assert await post("/flatten", {"side": "both"}) == 200
        final = await poll(
            status,
            lambda s: s["trading_state"] == "paused" and s["open_orders"] == 0,
            20,
            "the final flatten to leave nothing open",
        )
    return final, largest_leg


def test_flatten_storm_ends_flat_without_runaway(tmp_path: Path) -> None:
    with running_program(tmp_path, "--speed", "120") as svc:
        final, largest_leg = asyncio.run(_storm(svc.api_url))
        assert svc.stop() == 0
    assert final["positions"]["long"]["quantity"] == 0.0
    assert final["positions"]["short"]["quantity"] == 0.0
    assert final["counters"]["flattens"] == 2 * CYCLES + 1
    assert largest_leg < MAX_SANE_LEG_BTC
    events = [orjson.loads(line) for line in (svc.log_dir / "trading.log").read_text().splitlines()]
    names = [e["event"] for e in events]
    assert "leg_flipped" not in names
    assert "flatten_failed" not in names
    # A cancel that loses the race with a fill is rejected once; a rejected cancel is
    # retried at most once per bar, so no order may collect a burst of rejections.
    rejected = Counter(e["client_order_id"] for e in events if e["event"] == "cancel_rejected")
    assert not rejected or max(rejected.values()) <= 3, rejected.most_common(3)

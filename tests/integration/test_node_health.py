"""/health on the real TradingNode: "down" once the node has stopped.

``/health`` asks the node whether it runs through a probe that ``node.py`` hands
to the ops service. In NautilusTrader 1.231 ``TradingNode.is_running`` is a
method: a probe returning the bound method (always truthy) made /health report
the node as running forever. This drives the real service in a child
interpreter (Nautilus logging is per process): it asks /health while the node
runs, then stops the node while the listeners stay up and asks again.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.child import emit_result, paper_options, run_child

SPEED = 60.0


async def _scenario(log_dir: Path, built: list[Any]) -> dict[str, Any]:
    import aiohttp

    from hedgegrid_ops.node import build_service

    service = build_service(paper_options(log_dir, SPEED), asyncio.get_running_loop())
    built.append(service)
    ops = service.ops
    assert ops is not None
    facts: dict[str, Any] = {"probe_before_run": service.node.is_running()}
    await ops.start()
    run_task = asyncio.get_running_loop().create_task(service.node.run_async())
    try:
        async with aiohttp.ClientSession() as http:

            async def health() -> tuple[int, dict[str, Any]]:
                async with http.get(f"{ops.api_url}/health") as resp:
                    return resp.status, await resp.json()

            deadline = time.monotonic() + 60
            while service.strategy.counters.bars_processed < 2 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            facts["bars_before_stop"] = service.strategy.counters.bars_processed
            facts["running"] = await health()
            await service.node.stop_async()
            facts["node_is_running_after_stop"] = service.node.is_running()
            facts["stopped"] = await health()
    finally:
        run_task.cancel()
        await asyncio.gather(run_task, return_exceptions=True)
        await ops.stop()  # its app's cleanup closes the command bus
    return facts


def drive_node(log_dir: Path) -> dict[str, Any]:
    from hedgegrid_ops.logs import configure_logging, shutdown_logging

    configure_logging(log_dir, stdout=False)
    built: list[Any] = []
    try:
        return asyncio.run(_scenario(log_dir, built))
    finally:
        for service in built:
            service.node.dispose()  # only valid once the loop has finished
        shutdown_logging()


def test_health_is_down_when_the_real_node_has_stopped() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        facts = run_child("tests.integration.test_node_health", tmp)
    assert facts["probe_before_run"] is False
    assert facts["bars_before_stop"] >= 2
    code, body = facts["running"]
    assert code == 200 and body["status"] == "healthy", body
    assert facts["node_is_running_after_stop"] is False
    code, body = facts["stopped"]
    assert code == 503, body
    assert body["status"] == "down" and body["reason"] == "the trading node is not running"


if __name__ == "__main__":  # the child: python -m tests.integration.test_node_health DIR
    emit_result(drive_node(Path(sys.argv[1])))

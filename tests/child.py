"""Run a test module as a child interpreter and read back its one result line.

Nautilus initialises its logging once per process and a live TradingNode refuses
to bypass it, so a test that needs a live node in-process gets a fresh
interpreter: the module runs the node (``python -m tests.<module> ARGS``), prints
one ``RESULT <json>`` line, and the test asserts on the decoded result.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support.program import ROOT

RESULT_PREFIX = "HEDGEGRID_CHILD_RESULT "


def paper_options(log_dir: Path, speed: float) -> Any:
    """RunOptions for the default configs on the simulated market at ``speed``, ops on
    ephemeral ports (imports Nautilus: call it in the child only)."""
    import msgspec

    from hedgegrid_ops.config import load_strategy_config, load_venue_config
    from hedgegrid_ops.node import RunOptions
    from hedgegrid_ops.ops.settings import OpsSettings
    from tests.support.program import STRATEGY_YAML, VENUE_YAML

    strategy_cfg = load_strategy_config(STRATEGY_YAML)
    venue = load_venue_config(VENUE_YAML)
    market = msgspec.structs.replace(venue.market, speed=speed)
    return RunOptions(
        strategy=strategy_cfg,
        venue=msgspec.structs.replace(venue, market=market),
        log_dir=log_dir,
        ops=OpsSettings(api_port=0, prometheus_port=0, instrument_id=strategy_cfg.instrument_id),
    )


def emit_result(result: Any) -> None:
    """Called by the child: print the result line the parent looks for."""
    print(RESULT_PREFIX + json.dumps(result), flush=True)


def run_child(module: str, *args: str, timeout: float = 180) -> Any:
    proc = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:] + proc.stdout[-4000:]
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_PREFIX)]
    assert len(lines) == 1, proc.stdout[-4000:]
    return json.loads(lines[0].removeprefix(RESULT_PREFIX))


def drive_in_child(scenario: Any, log_dir: Path) -> Any:
    """Run ``scenario(log_dir, built)`` on a fresh loop with the JSON logs in ``log_dir``.

    The scenario appends every service it builds to ``built``; their nodes are disposed
    of here, after the loop has ended (Nautilus requires it), then logging is shut down.
    """
    import asyncio

    from hedgegrid_ops.logs import configure_logging, shutdown_logging

    built: list[Any] = []
    configure_logging(log_dir, stdout=False)
    try:
        return asyncio.run(scenario(log_dir, built))
    finally:
        for service in built:
            service.node.dispose()
        shutdown_logging()

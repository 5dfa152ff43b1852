"""How long the real program takes to exit after SIGTERM (``make bench``; not in ``make test``).

Each run starts ``run --enable-ops`` on the offline market with its own state and log
directories, waits until ``/health`` answers 200 and the strategy has traded for a
few seconds, sends SIGTERM and times, from this process, until the process has
exited. Runs at the default speed and at ``--speed 60``.

Prints one JSON object: per speed, each run's exit time in seconds, the median and
the worst. ``python -m tests.benchmarks.bench_exit [RUNS]`` (default 5 per speed).
"""

from __future__ import annotations

import signal
import statistics
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import orjson

from tests.support.program import running_program

TRADE_SECONDS = 3.0  # trading before the signal, so there are orders to cancel at stop


def _wait_healthy(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise RuntimeError("the service never became healthy")


def one_exit(speed: float | None) -> float:
    """Seconds from SIGTERM to the process having exited (exit 0 required)."""
    extra = ("--speed", str(speed)) if speed is not None else ()
    with tempfile.TemporaryDirectory(prefix="bench-exit-") as tmp:
        with running_program(Path(tmp), *extra) as svc:
            _wait_healthy(svc.api_url)
            time.sleep(TRADE_SECONDS)
            sent = time.monotonic()
            svc.proc.send_signal(signal.SIGTERM)
            code = svc.proc.wait(timeout=60)
            elapsed = time.monotonic() - sent
        if code != 0:
            raise RuntimeError(f"exit code {code} after SIGTERM")
    return elapsed


def main(runs: int) -> dict[str, Any]:
    result: dict[str, Any] = {"runs_per_speed": runs}
    for label, speed in (("default_speed", None), ("speed_60", 60.0)):
        times = [one_exit(speed) for _ in range(runs)]
        result[label] = {
            "exit_seconds": [round(t, 3) for t in times],
            "median": round(statistics.median(times), 3),
            "max": round(max(times), 3),
        }
    return result


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    sys.stdout.write(orjson.dumps(main(count)).decode() + "\n")

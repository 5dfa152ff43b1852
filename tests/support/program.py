"""Run the real program (``python -m hedgegrid_ops``) as a subprocess, as an operator would.

``run_program`` runs one command to completion. ``running_program`` is the one way
tests start the real service: it binds ephemeral ports (``--api-port 0``) and reads
the URLs it really listens on from its ``ops_listening`` line, so tests talk to it
over real sockets.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[2]
STRATEGY_YAML = ROOT / "configs" / "strategies" / "hedge_grid_v1.yaml"
VENUE_YAML = ROOT / "configs" / "venues" / "sim.yaml"


def nautilus_log_lines(log_dir: Path) -> list[dict]:
    """Every line of Nautilus's own log, oldest first, across its size-rotated files.

    Nautilus names each file ``nautilus_<opened at>.jsonl`` once it rotates by size, so
    the names sort in the order the files were written.
    """
    files = sorted(log_dir.glob("nautilus_*.jsonl"))
    assert files, f"no Nautilus log in {log_dir}"
    return [orjson.loads(line) for path in files for line in path.read_bytes().splitlines()]


def program_env(**extra: str) -> dict[str, str]:
    """The test runner's environment without any ``HEDGEGRID_*`` setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEDGEGRID_")}
    env["PYTHONUNBUFFERED"] = "1"
    # Each run gets its own state directory unless the test passes one: state saved by
    # one test (paused, halted) must not leak into the next through ./state.
    env["HEDGEGRID_STATE_DIR"] = tempfile.mkdtemp(prefix="hedgegrid-state-")
    env.update(extra)
    return env


def program(*args: str) -> list[str]:
    """The command line of ``python -m hedgegrid_ops ARGS`` with this interpreter."""
    return [sys.executable, "-m", "hedgegrid_ops", *args]


def run_program(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """Run one command of the program to completion and capture its output."""
    return subprocess.run(
        program(*args),
        cwd=ROOT,
        env=program_env(**(env or {})),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@dataclass
class RunningService:
    proc: subprocess.Popen[str]
    api_url: str
    metrics_url: str
    log_dir: Path
    lines: list[dict] = field(default_factory=list)

    def stop(self, timeout: float = 10.0, sig: signal.Signals = signal.SIGTERM) -> int:
        """Send ``sig`` (SIGTERM, or SIGINT as Ctrl-C does) and wait; SIGKILL past ``timeout``."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def _pump(proc: subprocess.Popen[str], sink: list[dict]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        try:
            sink.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            sink.append({"event": "non_json_stdout", "line": line})


@contextmanager
def running_program(
    tmp_path: Path,
    *extra: str,
    env: dict[str, str] | None = None,
    startup_timeout: float = 60.0,
    entry: str = "hedgegrid_ops",
) -> Iterator[RunningService]:
    """Run the service on ephemeral ports until the block ends (then SIGTERM).

    ``entry`` is the module run with ``python -m`` (the real program by default).
    """
    log_dir = tmp_path / "logs"
    args = (
        "run",
        "--enable-ops",
        "--api-port",
        "0",
        "--prometheus-port",
        "0",
        "--log-dir",
        str(log_dir),
        *extra,
    )
    proc = subprocess.Popen(
        [*program(*args)[:2], entry, *args],
        cwd=ROOT,
        env=program_env(**(env or {})),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[dict] = []
    threading.Thread(target=_pump, args=(proc, lines), daemon=True).start()
    deadline = time.monotonic() + startup_timeout
    listening = None
    while listening is None:
        listening = next((r for r in lines if r.get("event") == "ops_listening"), None)
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(
                f"service did not start: {proc.stderr.read() if proc.stderr else ''}"
            )
        time.sleep(0.05)
    service = RunningService(proc, listening["api"], listening["metrics"], log_dir, lines)
    try:
        yield service
    finally:
        service.stop()

"""System tools some tests drive for real (promtool, prometheus, chromium, jq, curl).

Without a tool those tests skip with the reason; under ``HEDGEGRID_REQUIRE_TOOLS=1``
(set by ``.ci/run``, which installs them) a missing tool fails the test instead, so CI
can never pass by quietly skipping.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest


def require_tool(*names: str) -> str:
    """The path of the first of ``names`` on PATH, else skip (or fail under CI)."""
    for name in names:
        path = shutil.which(name)
        if path is not None:
            return path
    message = f"{names[0]} is not installed (.ci/install-tools installs it)"
    if os.environ.get("HEDGEGRID_REQUIRE_TOOLS") == "1":
        pytest.fail(f"{message}; it is required because HEDGEGRID_REQUIRE_TOOLS=1")
    pytest.skip(message)


def stop_process(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if it has not exited within ``timeout`` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()

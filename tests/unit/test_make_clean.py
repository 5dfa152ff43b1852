"""``make clean`` removes caches and logs but never the audit trail."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.program import ROOT


def test_make_clean_keeps_the_audit_trail(tmp_path: Path) -> None:
    if shutil.which("make") is None:
        pytest.fail("make is required (it is how the project is built)")
    logs = tmp_path / "logs"
    logs.mkdir()
    for name in ("audit.log", "audit.log.1", "trading.log", "trading.log.2", "api_access.log"):
        (logs / name).write_text("{}\n")
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".pytest_cache").mkdir()
    subprocess.run(
        ["make", "-s", "-C", str(tmp_path), "-f", str(ROOT / "Makefile"), "clean"],
        check=True,
        capture_output=True,
        timeout=60,
    )
    assert sorted(p.name for p in logs.iterdir()) == ["audit.log", "audit.log.1"]
    assert not (tmp_path / ".venv").exists() and not (tmp_path / ".pytest_cache").exists()

"""Start-up errors of ``run``: one line on stderr, exit 2, never a traceback, nothing trading."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support.program import ROOT, VENUE_YAML, program, program_env

pytestmark = pytest.mark.e2e


def _run(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        program("run", "--duration", "5", *args),
        cwd=ROOT,
        env=program_env(**(env or {})),
        capture_output=True,
        text=True,
        timeout=60,
    )


def _one_line(proc: subprocess.CompletedProcess[str], expected: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert expected in lines[0], lines[0]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("  seed: 7", "  seed: 100000000000000000000000", "market.seed: Expected `int` <="),
        ("  starting_balance_usdt: 10000", "  starting_balance_usdt: .inf", "starting_balance"),
        ("  initial_price: 60000.0", "  initial_price: .inf", "market.initial_price"),
        ("  initial_price: 60000.0", "  initial_price: .nan", "market.initial_price"),
    ],
)
def test_unbounded_numbers_in_the_venue_config(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    text = VENUE_YAML.read_text()
    assert old in text
    bad = tmp_path / "venue.yaml"
    bad.write_text(text.replace(old, new, 1))
    proc = _run(tmp_path, "--log-dir", str(tmp_path / "logs"), "--venue-config", str(bad))
    _one_line(proc, expected)
    assert not (tmp_path / "logs").exists()


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (("--seed", "100000000000000000000000"), {}, "--seed"),
        (("--enable-ops", "--api-key", " "), {}, "--api-key is empty"),
        (("--enable-ops",), {"HEDGEGRID_API_KEY": ""}, "HEDGEGRID_API_KEY is empty"),
        (("--enable-ops", "--host", "0.0.0.0"), {}, "an API key is required when listening"),
        (("--enable-ops", "--metrics-require-key"), {}, "metrics_require_key needs an API key"),
        (("--log-level", "chatty"), {}, "--log-level"),
        (("--log-backups", "-1"), {}, "--log-backups"),
        (("--log-max-mb", "0"), {}, "--log-max-mb"),
        (("--fill-history-days", "-1"), {}, "--fill-history-days"),
        (("--fill-history-days", "1.5"), {}, "--fill-history-days"),
        (
            ("--enable-ops", "--notify-url", "ftp://hooks.example/T0/SECRETX"),
            {},
            "--notify-url: the webhook URL must be an http:// or https:// URL",
        ),
        (
            ("--enable-ops",),
            {"HEDGEGRID_NOTIFY_URL": "https://hooks.example:99999/T0/SECRETX"},
            "HEDGEGRID_NOTIFY_URL: the webhook URL has an invalid port (https://hooks.example",
        ),
        (("--notify-url", "https://hooks.example/T0/SECRETX"), {}, "needs --enable-ops"),
        (
            ("--enable-ops", "--notify-url", "https://hooks.example/x", "--notify-timeout", "0"),
            {},
            "--notify-timeout",
        ),
    ],
)
def test_unsafe_or_blank_settings(
    tmp_path: Path, args: tuple[str, ...], env: dict[str, str], expected: str
) -> None:
    ports = ("--api-port", "0", "--prometheus-port", "0")
    proc = _run(tmp_path, "--log-dir", str(tmp_path / "logs"), *ports, *args, env=env)
    _one_line(proc, expected)
    assert "SECRETX" not in proc.stderr  # a webhook URL's secret is never echoed
    assert not (tmp_path / "logs").exists()


def test_unusable_log_directories(tmp_path: Path) -> None:
    a_file = tmp_path / "not-a-dir"
    a_file.write_text("")
    _one_line(_run(tmp_path, "--log-dir", str(a_file)), "--log-dir: cannot write logs in")
    _one_line(_run(tmp_path, "--log-dir", "/proc/hedgegrid-logs"), "--log-dir: cannot write logs")

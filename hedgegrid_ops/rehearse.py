"""``make rehearse``: the local exchange and the program in live mode against it, as one command.

Anyone can watch a live-mode run on a fresh clone, with nothing real at stake:

1. starts ``python -m hedgegrid_ops exchange`` on a free port with a fresh random API
   key and secret (so no real key can ever be involved);
2. writes a copy of ``configs/venues/binance_local.yaml`` pointing at that port;
3. starts ``python -m hedgegrid_ops run --mode live --enable-ops`` with the keys in
   ``BINANCE_LOCAL_API_KEY`` / ``BINANCE_LOCAL_API_SECRET`` and the control-API key
   from ``HEDGEGRID_API_KEY``, or a generated one shown once on stderr;
4. on Ctrl-C / SIGTERM stops the program (grid cancelled, summary printed), then the
   exchange; exits with the program's exit code.

Arguments after ``--`` go to ``run`` (e.g. ``-- --api-port 0``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCAL_VENUE = Path("configs/venues/binance_local.yaml")
PLACEHOLDER_HTTP = "http://127.0.0.1:18765"
PLACEHOLDER_WS = "ws://127.0.0.1:18765"
STOP_TIMEOUT = 30.0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m hedgegrid_ops.rehearse",
        description="Run the local Binance exchange and the program in live mode against it.",
    )
    p.add_argument("--speed", default="1", help="exchange speed: simulated minutes per second")
    p.add_argument("--seed", default="7", help="seed of the exchange's market")
    p.add_argument("--exchange-port", default="0", help="exchange port (0 = any free port)")
    p.add_argument("run_args", nargs="*", help="extra arguments for `run` (after --)")
    return p


def _say(message: str) -> None:
    sys.stderr.write(f"rehearse: {message}\n")
    sys.stderr.flush()


def _stop(proc: subprocess.Popen, name: str) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            _say(f"{name} did not stop in {STOP_TIMEOUT:g}s; killing it")
            proc.kill()
            proc.wait()
    return proc.returncode


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    api_key, api_secret = secrets.token_hex(16), secrets.token_hex(24)
    control_key = os.environ.get("HEDGEGRID_API_KEY", "").strip()
    if not control_key:
        control_key = secrets.token_urlsafe(24)
        _say(f"control API key for this rehearsal (shown once): {control_key}")
        _say("set HEDGEGRID_API_KEY to choose your own")

    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    base_env = {k: v for k, v in os.environ.items() if not k.startswith("BINANCE_")}
    exchange = subprocess.Popen(
        [
            sys.executable, "-m", "hedgegrid_ops", "exchange",
            "--port", args.exchange_port, "--speed", args.speed, "--seed", args.seed,
            "--api-key", api_key,
        ],
        cwd=ROOT,
        env={**base_env, "HEDGEGRID_EXCHANGE_API_SECRET": api_secret},
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,  # our signal handler decides when it stops
    )  # fmt: skip
    assert exchange.stdout is not None
    line = exchange.stdout.readline()
    if not line:
        _say("the local exchange did not start")
        return _stop(exchange, "exchange") or 1
    info = json.loads(line)
    _say(f"local exchange listening on {info['rest_url']} (admin: {info['admin_url']})")

    with tempfile.TemporaryDirectory(prefix="hedgegrid-rehearse-") as tmp:
        text = (ROOT / LOCAL_VENUE).read_text()
        text = text.replace(PLACEHOLDER_HTTP, info["rest_url"])
        text = text.replace(PLACEHOLDER_WS, info["ws_url"])
        venue = Path(tmp) / "binance_local.yaml"
        venue.write_text(text)
        program = subprocess.Popen(
            [
                sys.executable, "-m", "hedgegrid_ops", "run", "--mode", "live",
                "--venue-config", str(venue), "--enable-ops", *args.run_args,
            ],
            cwd=ROOT,
            env={
                **base_env,
                "BINANCE_LOCAL_API_KEY": api_key,
                "BINANCE_LOCAL_API_SECRET": api_secret,
                "HEDGEGRID_API_KEY": control_key,
            },
            start_new_session=True,
        )  # fmt: skip
        try:
            while not stopping and program.poll() is None and exchange.poll() is None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    program.wait(timeout=0.2)
        finally:
            code = _stop(program, "program")
            _stop(exchange, "exchange")
    if exchange.returncode not in (0, -signal.SIGTERM) and not stopping:
        _say(f"the local exchange stopped unexpectedly (exit {exchange.returncode})")
    _say(f"stopped (program exit {code})")
    return code


if __name__ == "__main__":
    sys.exit(main())

"""Client-side latency of the real program under load, beside a bare-aiohttp floor.

Run by ``make bench``. Everything is measured as an operator sees it: from other
processes (wrk for closed loops, ``tests.benchmarks.openloop`` for a fixed rate), over
loopback, while the strategy trades on the offline market. In the same run a bare
aiohttp app on the same loop type answers a JSON body of the same size (the floor,
``tests.benchmarks.floor``), idle and with its loop held as busy as the program's was,
and every figure of the program is divided by the floor's.

Each figure is the median of ``REPS`` repetitions. The results are written to
``docs/performance.json`` and as a Markdown table between markers in
``docs/performance.md``; the table is also printed.

``BENCH_QUICK=1`` shortens every phase (for a smoke run; the numbers are then noisy).
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from tests.benchmarks.stats import histogram_quantiles, median_of, write_results

ROOT = Path(__file__).resolve().parents[2]
QUICK = os.environ.get("BENCH_QUICK") == "1"
REPS = 1 if QUICK else 3
PHASE_SECONDS = 1 if QUICK else 3
OPEN_LOOP_RATE = 500
API_KEY = "bench-" + "k" * 40
GET_ROUTES = ("/health", "/status", "/ladders", "/orders", "/metrics")
THROTTLE_BODY = '{"throttle": 1.0}'
LOADS = {"default": "10", "stress": "60"}
CONNECTIONS = (1, 8)
DOC = ROOT / "docs" / "performance.md"
JSON_OUT = ROOT / "docs" / "performance.json"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"

WRK_SCRIPT = """
wrk.method = "{method}"
{body}
wrk.headers["X-API-Key"] = "{key}"
wrk.headers["Content-Type"] = "application/json"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {{"requests":%d,"duration_us":%d,"errors":%d,"status_errors":%d,' ..
    '"p50_us":%.1f,"p99_us":%.1f,"p999_us":%.1f,"max_us":%.1f}}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9), latency.max))
end
"""


# -- processes -----------------------------------------------------------------------


@dataclass
class Server:
    proc: subprocess.Popen[str]
    url: str

    def rss_mb(self) -> float:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        match = re.search(r"VmRSS:\s+(\d+) kB", status)
        return round(int(match.group(1)) / 1024, 1) if match else float("nan")

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _first_json_line(
    proc: subprocess.Popen[str], key: str, value: str | None, timeout: float
) -> dict:
    """The first JSON line on the child's stdout holding ``key`` (equal to ``value`` if given)."""
    found: dict[str, Any] = {}
    ready = threading.Event()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            wanted = isinstance(record, dict) and key in record
            if wanted and not ready.is_set() and value in (None, record[key]):
                found.update(record)
                ready.set()

    threading.Thread(target=pump, daemon=True).start()
    if not ready.wait(timeout):
        proc.kill()
        raise RuntimeError(f"no {key!r} line within {timeout} s")
    return found


@contextmanager
def program(speed: str, log_dir: Path) -> Iterator[tuple[Server, float]]:
    """The real program on the offline market; yields it and its start-to-healthy time."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hedgegrid_ops",
            "run",
            "--enable-ops",
            "--speed",
            speed,
            "--api-port",
            "0",
            "--prometheus-port",
            "0",
            "--log-dir",
            str(log_dir),
            "--state-dir",  # a fresh state: a saved pause or halt would skew the run
            str(log_dir / "state"),
            "--post-budget",
            "1000000",
        ],
        cwd=ROOT,
        env={**os.environ, "HEDGEGRID_API_KEY": API_KEY, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        listening = _first_json_line(proc, "event", "ops_listening", 60)
        server = Server(proc, listening["api"])
        while True:
            try:
                with urllib.request.urlopen(f"{server.url}/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            time.sleep(0.02)
        yield server, time.perf_counter() - started
    finally:
        _stop(proc)


@contextmanager
def floor(body_bytes: int, busy: float) -> Iterator[Server]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.benchmarks.floor",
            "--body-bytes",
            str(body_bytes),
            "--busy",
            str(busy),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        yield Server(proc, _first_json_line(proc, "url", None, 30)["url"])
    finally:
        _stop(proc)


# -- load generators -----------------------------------------------------------------


def wrk(url: str, connections: int, method: str = "GET", body: str | None = None) -> dict:
    """One closed-loop wrk run; latencies in ms, throughput in req/s."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        body_line = f"wrk.body = '{body}'" if body is not None else ""
        script.write(WRK_SCRIPT.format(method=method, body=body_line, key=API_KEY))
    try:
        out = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{PHASE_SECONDS}s", "-s", script.name, url],
            capture_output=True,
            text=True,
            check=True,
            timeout=PHASE_SECONDS + 30,
        ).stdout
    finally:
        os.unlink(script.name)
    raw = orjson.loads(out.split("BENCH ", 1)[1].splitlines()[0])
    return {
        "rps": round(raw["requests"] / (raw["duration_us"] / 1e6), 1),
        "p50_ms": raw["p50_us"] / 1e3,
        "p99_ms": raw["p99_us"] / 1e3,
        "p999_ms": raw["p999_us"] / 1e3,
        "max_ms": raw["max_us"] / 1e3,
        "errors": raw["errors"] + raw["status_errors"],
    }


def open_loop(url: str, method: str = "GET", body: str | None = None) -> dict:
    cmd = [
        sys.executable,
        "-m",
        "tests.benchmarks.openloop",
        url,
        "--rate",
        str(OPEN_LOOP_RATE),
        "--seconds",
        str(PHASE_SECONDS),
        "--method",
        method,
        "--header",
        f"X-API-Key: {API_KEY}",
    ]
    if body is not None:
        cmd += ["--json", body]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return orjson.loads(out.splitlines()[-1])


def repeated(measure: Any, *args: Any, **kw: Any) -> dict:
    return median_of([measure(*args, **kw) for _ in range(REPS)])


# -- the program's own figures -------------------------------------------------------


def scrape(url: str) -> str:
    request = urllib.request.Request(f"{url}/metrics", headers={"X-API-Key": API_KEY})
    with urllib.request.urlopen(request, timeout=5) as resp:
        return resp.read().decode()


LAG_BUCKET = re.compile(
    r'^hedgegrid_event_loop_lag_probe_seconds_bucket\{(?:[^}]*,)?le="([^"]+)"[^}]*\} (\S+)$'
)
COUNTER = re.compile(r"^(hedgegrid_[a-z_]+_total)(?:\{[^}]*\})? (\S+)$")


def lag_buckets(text: str) -> dict[float, float]:
    out: dict[float, float] = {}
    for line in text.splitlines():
        match = LAG_BUCKET.match(line)
        if match:
            out[float(match.group(1))] = float(match.group(2))
    return out


def lag_between(before: dict[float, float], after: dict[float, float]) -> dict[str, float]:
    if not after:
        return {}
    delta = {b: after[b] - before.get(b, 0.0) for b in after}
    q = histogram_quantiles(delta, (0.5, 0.99, 1.0))
    return {
        "samples": max(delta.values()),
        "p50_ms": round(q[0.5] * 1e3, 3),
        "p99_ms": round(q[0.99] * 1e3, 3),
        "max_bucket_ms": round(q[1.0] * 1e3, 3),
    }


DURATION = re.compile(r"^hedgegrid_api_request_duration_seconds_(sum|count)\{([^}]*)\} (\S+)$")


def handling_totals(text: str, route: str, method: str) -> tuple[float, float]:
    """(seconds, requests) the program has spent handling ``method route`` so far: its
    own request-duration histogram, measured inside the process around the middlewares
    and the handler (for ``/metrics``, mostly the render)."""
    sums = {"sum": 0.0, "count": 0.0}
    for line in text.splitlines():
        match = DURATION.match(line)
        if match is None:
            continue
        labels = match.group(2)
        if f'route="{route}"' in labels and f'method="{method}"' in labels:
            sums[match.group(1)] += float(match.group(3))
    return sums["sum"], sums["count"]


def server_mean_ms(before: str, after: str, route: str, method: str) -> float | None:
    s0, n0 = handling_totals(before, route, method)
    s1, n1 = handling_totals(after, route, method)
    return round((s1 - s0) / (n1 - n0) * 1e3, 4) if n1 > n0 else None


def counter(text: str, name: str) -> float:
    total = 0.0
    for line in text.splitlines():
        match = COUNTER.match(line)
        if match and match.group(1) == name:
            total += float(match.group(2))
    return total


def measure_program(load: str, speed: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, program(speed, Path(tmp)) as (server, healthy_s):
        rss_start = server.rss_mb()
        time.sleep(2 * PHASE_SECONDS)  # let it trade so the snapshot holds orders
        body_bytes = len(
            urllib.request.urlopen(
                urllib.request.Request(f"{server.url}/status", headers={"X-API-Key": API_KEY})
            ).read()
        )
        # Loop busy fraction and lag with no HTTP load.
        quiet_before = scrape(server.url)
        cpu0, t0 = server.cpu_seconds(), time.perf_counter()
        time.sleep(2 * PHASE_SECONDS)
        busy = (server.cpu_seconds() - cpu0) / (time.perf_counter() - t0)
        quiet_after = scrape(server.url)
        routes: dict[str, Any] = {}
        server_ms: dict[str, float | None] = {}
        for path in GET_ROUTES:
            before = scrape(server.url)
            for conns in CONNECTIONS:
                routes[f"GET {path} c{conns}"] = repeated(wrk, server.url + path, conns)
            routes[f"GET {path} open{OPEN_LOOP_RATE}"] = repeated(open_loop, server.url + path)
            server_ms[f"GET {path}"] = server_mean_ms(before, scrape(server.url), path, "GET")
        before = scrape(server.url)
        for conns in CONNECTIONS:
            routes[f"POST /set-throttle c{conns}"] = repeated(
                wrk, server.url + "/set-throttle", conns, "POST", THROTTLE_BODY
            )
        routes[f"POST /set-throttle open{OPEN_LOOP_RATE}"] = repeated(
            open_loop, server.url + "/set-throttle", "POST", THROTTLE_BODY
        )
        loaded_after = scrape(server.url)
        server_ms["POST /set-throttle"] = server_mean_ms(
            before, loaded_after, "/set-throttle", "POST"
        )
        return {
            "speed": float(speed),
            "start_to_healthy_s": round(healthy_s, 2),
            "status_body_bytes": body_bytes,
            "metrics_body_bytes": len(loaded_after.encode()),
            "process_cpu_fraction_idle_http": round(busy, 3),
            "rss_mb": {"at_start": rss_start, "after_run": server.rss_mb()},
            "loop_lag": {
                "without_http": lag_between(lag_buckets(quiet_before), lag_buckets(quiet_after)),
                "with_http": lag_between(lag_buckets(quiet_after), lag_buckets(loaded_after)),
            },
            "bars_processed": counter(loaded_after, "hedgegrid_bars_processed_total"),
            # Mean time inside the process per request (middlewares + handler), from the
            # program's own histogram: for GET /metrics this is the render time.
            "server_mean_ms": server_ms,
            "routes": routes,
        }


def _cpu_per_bar(speed: str, with_ops: bool, log_dir: Path) -> dict[str, float]:
    """CPU seconds the program spends per bar while it trades, without HTTP load."""
    args = ["run", "--speed", speed, "--log-dir", str(log_dir)]
    args += ["--state-dir", str(log_dir / "state")]  # fresh: no saved pause or halt
    if with_ops:
        args += ["--enable-ops", "--api-port", "0", "--prometheus-port", "0"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "hedgegrid_ops", *args],
        cwd=ROOT,
        env={**os.environ, "HEDGEGRID_API_KEY": API_KEY, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    lines: list[dict[str, Any]] = []

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            try:
                lines.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                continue

    threading.Thread(target=pump, daemon=True).start()
    server = Server(proc, "")
    try:
        deadline = time.monotonic() + 60
        while not any(r.get("event") == "strategy_started" for r in lines):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("the program did not start trading")
            time.sleep(0.02)
        cpu0, t0 = server.cpu_seconds(), time.perf_counter()
        time.sleep(4 * PHASE_SECONDS)
        cpu, wall = server.cpu_seconds() - cpu0, time.perf_counter() - t0
    finally:
        _stop(proc)
    time.sleep(0.2)
    summary = next((r for r in lines if r.get("event") == "run_summary"), {})
    bars = float(summary.get("bars_processed", 0))
    return {
        "bars_per_s": round(bars / wall, 1),
        "cpu_ms_per_bar": round(cpu / bars * 1e3, 3) if bars else float("nan"),
    }


def measure_ops_overhead(speed: str) -> dict[str, Any]:
    """Ops enabled vs disabled: the CPU the operations layer adds to each bar's work."""
    runs: dict[str, list[dict[str, float]]] = {"ops_disabled": [], "ops_enabled": []}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(REPS):
            for label in runs:
                log_dir = Path(tmp) / f"{label}-{rep}"
                runs[label].append(_cpu_per_bar(speed, label == "ops_enabled", log_dir))
    med = {label: median_of(samples) for label, samples in runs.items()}
    off, on = med["ops_disabled"]["cpu_ms_per_bar"], med["ops_enabled"]["cpu_ms_per_bar"]
    return {**med, "overhead_pct": round((on - off) / off * 100, 1) if off else None}


def measure_floor(body_bytes: int, busy: float) -> dict[str, Any]:
    with floor(body_bytes, busy) as server:
        routes: dict[str, Any] = {}
        for conns in CONNECTIONS:
            routes[f"c{conns}"] = repeated(wrk, server.url + "/", conns)
        routes[f"open{OPEN_LOOP_RATE}"] = repeated(open_loop, server.url + "/")
        return {"busy_fraction": round(busy, 3), "routes": routes}


def ratios(program_routes: dict[str, Any], floor_routes: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, figures in program_routes.items():
        base = floor_routes[name.rsplit(" ", 1)[1]]
        out[name] = {
            k: round(figures[k] / base[k], 2) if base.get(k) else None
            for k in ("rps", "p50_ms", "p99_ms", "p999_ms")
            if k in figures
        }
    return out


# -- report --------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    import uvloop

    return {
        "cores": os.cpu_count(),
        "cpu": next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            platform.machine(),
        ),
        "python": platform.python_version(),
        "loop": f"uvloop {uvloop.__version__}",
        "wrk": subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split()[1],
        "repetitions": REPS,
        "phase_seconds": PHASE_SECONDS,
    }


def _fmt(value: Any) -> str:
    return "–" if value is None else (f"{value:,.0f}" if value >= 100 else f"{value:.2f}")


def table(report: dict[str, Any]) -> str:
    rows = [
        "| load | route | clients | req/s | p50 ms | p99 ms | p99.9 ms | max ms "
        "| floor req/s | floor p99 ms | ×floor req/s | ×floor p99 |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for load, block in report["loads"].items():
        for name, fig in block["program"]["routes"].items():
            route, clients = name.rsplit(" ", 1)
            base = block["floor"]["routes"][clients]
            ratio = block["ratios"][name]
            shown = clients.replace("open", "open ").replace("c", "") + (
                " req/s" if clients.startswith("open") else ""
            )
            rows.append(
                f"| {load} | {route} | {shown} | {_fmt(fig.get('rps', fig.get('rate_achieved')))}"
                f" | {_fmt(fig['p50_ms'])} | {_fmt(fig['p99_ms'])} | {_fmt(fig['p999_ms'])}"
                f" | {_fmt(fig['max_ms'])} | {_fmt(base.get('rps', base.get('rate_achieved')))}"
                f" | {_fmt(base['p99_ms'])} | {_fmt(ratio.get('rps'))} | {_fmt(ratio['p99_ms'])} |"
            )
    return "\n".join(rows)


def main() -> int:
    if shutil.which("wrk") is None:
        print("bench: wrk is missing (make bench installs it via .ci/install-tools)")
        return 2
    report: dict[str, Any] = {"machine": machine(), "loads": {}}
    for load, speed in LOADS.items():
        prog = measure_program(load, speed)
        busy = prog["process_cpu_fraction_idle_http"] if load == "stress" else 0.0
        flo = measure_floor(prog["status_body_bytes"], min(busy, 0.95))
        report["loads"][load] = {
            "program": prog,
            "floor": flo,
            "ratios": ratios(prog["routes"], flo["routes"]),
        }
    report["ops_overhead"] = measure_ops_overhead(LOADS["stress"])
    rendered = table(report)
    summary = {
        load: {k: v for k, v in block["program"].items() if k != "routes"}
        for load, block in report["loads"].items()
    }
    rendered += (
        "\n\n```json\n"
        + orjson.dumps(
            {
                "machine": report["machine"],
                "program": summary,
                "ops_overhead": report["ops_overhead"],
            },
            option=orjson.OPT_INDENT_2,
        ).decode()
        + "\n```"
    )
    write_results(report, rendered, JSON_OUT, DOC, (BEGIN, END))
    print(rendered)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What the live integration tests read the running service with: an HTTP journal that
stamps every request with a traceable id, the metrics-versus-/status comparison, and
the log-file checks. Tested in ``tests/unit/test_support.py``.
"""

from __future__ import annotations

import itertools
import math
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from hedgegrid_ops.api import COMMAND_ROUTES as API_COMMANDS
from tests.support.prometheus import metric_types, parse_prometheus, value

# Audit-log action name by command path, from the API's own route table.
COMMAND_ROUTES = {c.path: c.action.value for c in API_COMMANDS}


def same_number(a: float | None, b: float | None) -> bool:
    """Equal as far as a float survives text rendering (None on the JSON side is NaN or 0)."""
    if a is None or b is None:
        return a is b
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-9)


def spec_gauges_from_status(status: dict[str, Any], ladders: dict[str, Any]) -> dict[str, float]:
    """What the operations guide's 15 gauges must show, worked out from /status and /ladders."""
    long, short = status["positions"]["long"], status["positions"]["short"]
    return {
        "hedgegrid_long_inventory_usdt": long["inventory_usdt"],
        "hedgegrid_short_inventory_usdt": short["inventory_usdt"],
        "hedgegrid_net_inventory_usdt": long["inventory_usdt"] - short["inventory_usdt"],
        "hedgegrid_active_rungs_long": float(len(ladders["long_ladder"])),
        "hedgegrid_active_rungs_short": float(len(ladders["short_ladder"])),
        "hedgegrid_open_orders": float(status["open_orders"]),
        "hedgegrid_margin_ratio": status["margin_ratio"],
        "hedgegrid_maker_ratio": status["maker_ratio"],
        "hedgegrid_funding_rate_current": status["funding"]["rate"],
        "hedgegrid_funding_cost_1h_projected_usdt": status["funding"]["cost_1h_projected_usdt"],
        "hedgegrid_realized_pnl_usdt": status["pnl"]["realized"],
        "hedgegrid_unrealized_pnl_usdt": status["pnl"]["unrealized"],
        "hedgegrid_total_pnl_usdt": status["pnl"]["total"],
        "hedgegrid_uptime_seconds": status["uptime"],
        "hedgegrid_last_bar_timestamp": status["last_bar"] or 0.0,
    }


def extra_gauges_from_status(
    status: dict[str, Any],
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The operator extras that mirror /status fields, keyed by (name, extra labels)."""
    counters = status["counters"]
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {
        ("hedgegrid_balance_usdt", ()): status["balance_usdt"],
        ("hedgegrid_equity_usdt", ()): status["equity_usdt"],
        ("hedgegrid_margin_used_usdt", ()): status["margin_used_usdt"],
        ("hedgegrid_throttle", ()): status["throttle"],
        ("hedgegrid_position_quantity", (("side", "long"),)): status["positions"]["long"][
            "quantity"
        ],
        ("hedgegrid_position_quantity", (("side", "short"),)): status["positions"]["short"][
            "quantity"
        ],
        ("hedgegrid_funding_scale", (("side", "long"),)): status["funding"]["scale_long"],
        ("hedgegrid_funding_scale", (("side", "short"),)): status["funding"]["scale_short"],
        ("hedgegrid_trading_state", (("state", status["trading_state"]),)): 1.0,
        ("hedgegrid_regime", (("regime", status["regime"]),)): 1.0,
        ("hedgegrid_bars_processed_total", ()): counters["bars_processed"],
        ("hedgegrid_orders_submitted_total", (("side", "buy"),)): counters["orders_submitted_buy"],
        ("hedgegrid_orders_submitted_total", (("side", "sell"),)): counters[
            "orders_submitted_sell"
        ],
        ("hedgegrid_orders_cancelled_total", ()): counters["orders_cancelled"],
        ("hedgegrid_orders_rejected_total", ()): counters["orders_rejected"],
        ("hedgegrid_orders_denied_total", ()): counters["orders_denied"],
        ("hedgegrid_flattens_total", ()): counters["flattens"],
        ("hedgegrid_recenters_total", ()): counters["recenters"],
        ("hedgegrid_funding_payments_total", ()): counters["funding_payments"],
    }
    for side in ("buy", "sell"):
        for liquidity in ("maker", "taker"):
            key = ("hedgegrid_fills_total", (("liquidity", liquidity), ("side", side)))
            out[key] = counters[f"fills_{side}_{liquidity}"]
    if status["mid_price"] is not None:
        out[("hedgegrid_mid_price", ())] = status["mid_price"]
    return out


def assert_metrics_match_status(text: str, status: dict[str, Any], ladders: dict[str, Any]) -> None:
    """Every spec gauge and every mirrored extra equals what /status (and /ladders) say."""
    samples = parse_prometheus(text)
    types = metric_types(text)
    mismatches: list[str] = []
    for name, expected in spec_gauges_from_status(status, ladders).items():
        assert types.get(name) == "gauge", f"{name} is not declared as a gauge: {types.get(name)}"
        got = value(samples, name)
        if not same_number(got, expected):
            mismatches.append(f"{name}: metrics {got!r} != status {expected!r}")
    for (name, labels), expected in extra_gauges_from_status(status).items():
        got = value(samples, name, **dict(labels))
        if not same_number(got, float(expected)):
            mismatches.append(f"{name}{dict(labels)}: metrics {got!r} != status {expected!r}")
    for state in ("starting", "running", "paused", "flattening", "halted"):
        want = 1.0 if state == status["trading_state"] else 0.0
        got = value(samples, "hedgegrid_trading_state", state=state)
        if got != want:
            mismatches.append(f"hedgegrid_trading_state{{state={state}}}: {got} != {want}")
    assert not mismatches, "\n".join(mismatches)


# ---- HTTP ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    method: str
    path: str
    status: int
    body: Any  # parsed JSON when the answer is JSON, else text
    headers: Mapping[str, str]
    request_id: str
    sent: Any = None  # the JSON body we sent, if any

    def json(self) -> dict[str, Any]:
        assert isinstance(self.body, dict), (
            f"{self.method} {self.path}: not a JSON object: {self.body!r}"
        )
        return self.body


@dataclass
class Journal:
    """Every request a module sent, so the log tests can find each one in the access/audit logs."""

    prefix: str
    replies: list[Reply] = field(default_factory=list)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def next_id(self) -> str:
        return f"{self.prefix}-{next(self._ids)}"


class Api:
    """A tiny client over aiohttp that stamps a traceable X-Request-ID on every request."""

    def __init__(
        self,
        base_url: str,
        session: aiohttp.ClientSession,
        journal: Journal,
        api_key: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = session
        self.journal = journal
        self.api_key = api_key

    async def call(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        key: str | bool | None = True,
        url: str | None = None,
    ) -> Reply:
        """``key=True`` sends the configured key, ``None`` sends none, a string sends that."""
        rid = self.journal.next_id()
        hdrs = {"X-Request-ID": rid, **(headers or {})}
        presented = self.api_key if key is True else (key or None)
        if presented is not None:
            hdrs["X-API-Key"] = presented
        if json_body is not None:
            data = orjson.dumps(json_body)
        if data is not None:  # raw bytes are JSON-to-be (possibly broken) unless told otherwise
            hdrs.setdefault("Content-Type", "application/json")
        target = url or f"{self.base_url}{path}"
        async with self.session.request(method, target, data=data, headers=hdrs) as resp:
            raw = await resp.read()
            text = raw.decode("utf-8", "replace")
            body: Any = text
            if resp.content_type == "application/json":
                body = orjson.loads(raw)
            reply = Reply(method, path, resp.status, body, resp.headers.copy(), rid, json_body)
        self.journal.replies.append(reply)
        return reply

    async def get(self, path: str, **kw: Any) -> Reply:
        return await self.call("GET", path, **kw)

    async def post(self, path: str, body: Any = None, **kw: Any) -> Reply:
        return await self.call("POST", path, json_body=body, **kw)

    async def ok(self, method: str, path: str, body: Any = None, **kw: Any) -> dict[str, Any]:
        reply = await self.call(method, path, json_body=body, **kw)
        assert reply.status == 200, f"{method} {path}: {reply.status} {reply.body!r}"
        return reply.json()

    async def status(self) -> dict[str, Any]:
        return await self.ok("GET", "/status")

    async def metrics_text(self, url: str | None = None) -> str:
        reply = await self.call("GET", "/metrics", url=url)
        assert reply.status == 200, reply
        assert isinstance(reply.body, str)
        return reply.body


def grid_orders(orders: dict[str, Any]) -> list[dict[str, Any]]:
    return [o for o in orders["orders"] if o["role"] == "grid"]


# ---- logs ---------------------------------------------------------------------------------


def _jq_parses(path: Path) -> None:
    proc = subprocess.run(
        ["jq", "-c", "."], input=path.read_bytes(), capture_output=True, check=False, timeout=30
    )
    assert proc.returncode == 0, f"jq failed on {path.name}: {proc.stderr.decode()[:500]}"
    lines = [ln for ln in path.read_bytes().splitlines() if ln.strip()]
    assert len(proc.stdout.splitlines()) == len(lines), f"{path.name}: not one object per line"


def _json_lines(path: Path) -> list[dict[str, Any]]:
    out = []
    for line in path.read_bytes().splitlines():
        if line.strip():
            record = orjson.loads(line)
            assert isinstance(record, dict), line
            out.append(record)
    return out


def check_logs_parse(log_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """jq (or Python when jq is missing) parses every line; our own lines carry the common keys."""
    files = sorted(log_dir.glob("*.log"))
    assert {p.name for p in files} >= {"trading.log", "api_access.log", "audit.log"}
    parsed = {}
    for path in [*files, *log_dir.glob("*.jsonl")]:
        if shutil.which("jq") is not None:
            _jq_parses(path)
        parsed[path.name] = _json_lines(path)
    for name in ("trading.log", "api_access.log", "audit.log"):
        for record in parsed[name]:
            assert {"timestamp", "level", "event", "logger"} <= record.keys(), record
            assert record["timestamp"].endswith("Z") and "T" in record["timestamp"]
    return parsed

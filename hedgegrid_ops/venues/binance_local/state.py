"""``--state FILE``: the account survives a restart of the exchange.

Balances, positions, leverage/margin settings, open orders and the recent order,
trade and income history (so a reconnecting program reconciles its fills) are
written as JSON: first to a temporary file in the same directory, fsynced, then
renamed over the old file, so a crash mid-write leaves the previous state intact.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import asdict, fields
from decimal import Decimal
from pathlib import Path
from typing import Any

from hedgegrid_ops.venues.binance_local.engine import Engine
from hedgegrid_ops.venues.binance_local.market import KlineRow
from hedgegrid_ops.venues.binance_local.wire import Fill, Income, Order, Position

STATE_VERSION = 1


class StateError(ValueError):
    """A state file that cannot be used; the message names the file and the problem."""


def _enc(value: Any) -> Any:
    return str(value) if isinstance(value, Decimal) else value


def _record(obj: Any) -> dict[str, Any]:
    return {k: _enc(v) for k, v in asdict(obj).items()}


def _build(cls: type, raw: dict[str, Any]) -> Any:
    kwargs = {}
    for f in fields(cls):
        if f.name in raw:
            value = raw[f.name]
            kwargs[f.name] = Decimal(value) if f.type in ("Decimal", Decimal) else value
    return cls(**kwargs)


# Closed 1-minute klines kept in the file: after a restart they are the market's
# history (what really happened here), and the price resumes from the last mark.
KLINES_KEPT = 240


def kline_record(k: KlineRow) -> list[Any]:
    return [
        k.open_ms,
        str(k.open),
        str(k.high),
        str(k.low),
        str(k.close),
        str(k.volume),
        str(k.quote_volume),
        k.trades,
        str(k.taker_buy_volume),
        str(k.taker_buy_quote),
        k.first_trade_id,
        k.last_trade_id,
    ]


def kline_from_record(raw: list[Any]) -> KlineRow:
    return KlineRow(
        open_ms=int(raw[0]),
        open=Decimal(raw[1]),
        high=Decimal(raw[2]),
        low=Decimal(raw[3]),
        close=Decimal(raw[4]),
        volume=Decimal(raw[5]),
        quote_volume=Decimal(raw[6]),
        trades=int(raw[7]),
        taker_buy_volume=Decimal(raw[8]),
        taker_buy_quote=Decimal(raw[9]),
        first_trade_id=int(raw[10]),
        last_trade_id=int(raw[11]),
    )


def restored_klines(data: dict[str, Any]) -> list[KlineRow]:
    """The kline history saved with the state (oldest first)."""
    return [kline_from_record(raw) for raw in data.get("klines", [])]


def snapshot(engine: Engine, klines: list[KlineRow] | None = None) -> dict[str, Any]:
    """Everything that must survive a restart, as plain JSON values."""
    return {
        "klines": [kline_record(k) for k in (klines or [])[-KLINES_KEPT:]],
        "version": STATE_VERSION,
        "wallet": str(engine.wallet),
        "dual_side": engine.dual_side,
        "symbols": {
            s: {"leverage": st.leverage, "margin_type": st.margin_type, "mark": str(st.mark)}
            for s, st in engine.symbols.items()
        },
        "positions": [_record(p) for p in engine.positions.values() if p.amt or p.realized],
        "orders": [_record(o) for o in engine.orders.values()],
        "fills": [_record(f) for f in engine.fills],
        "income": [_record(i) for i in engine.income],
        "ids": {"order": engine.ids.order, "trade": engine.ids.trade, "tran": engine.ids.tran},
        "update_ms": engine.update_ms,
    }


def restore(engine: Engine, data: dict[str, Any]) -> None:
    """Load a :func:`snapshot` into a fresh engine."""
    if data.get("version") != STATE_VERSION:
        raise StateError(f"unsupported state version {data.get('version')!r}")
    engine.wallet = Decimal(data["wallet"])
    engine.dual_side = bool(data["dual_side"])
    for name, cfg in data.get("symbols", {}).items():
        if name in engine.symbols:
            engine.symbols[name].leverage = int(cfg["leverage"])
            engine.symbols[name].margin_type = str(cfg["margin_type"])
            engine.symbols[name].mark = Decimal(cfg.get("mark", "0"))
    for raw in data.get("positions", []):
        p = _build(Position, raw)
        engine.positions[(p.symbol, p.side)] = p
    for raw in data.get("orders", []):
        o = _build(Order, raw)
        if o.symbol not in engine.symbols:
            continue
        engine.orders[o.order_id] = o
        engine.by_client[(o.symbol, o.client_id)] = o.order_id
        if o.is_open:
            engine.open_ids[o.symbol].append(o.order_id)
    engine.fills.extend(_build(Fill, raw) for raw in data.get("fills", []))
    engine.income.extend(_build(Income, raw) for raw in data.get("income", []))
    ids = data["ids"]
    engine.ids.order, engine.ids.trade, engine.ids.tran = ids["order"], ids["trade"], ids["tran"]
    engine.update_ms = int(data.get("update_ms", 0))
    restored_klines(data)  # validated here, used by the market


def load(path: Path) -> dict[str, Any] | None:
    """The saved state, or None when the file does not exist yet."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StateError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise StateError(f"{path}: expected a JSON object")
    return data


def save(path: Path, data: dict[str, Any]) -> None:
    """Write-then-rename: readers see the old file or the new one, never half of one."""
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, separators=(",", ":"))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def validate(engine: Engine, data: dict[str, Any], path: Path) -> None:
    """Restore into ``engine``, turning any malformed content into a :class:`StateError`."""
    try:
        restore(engine, data)
    except StateError as exc:
        raise StateError(f"{path}: {exc}") from None
    except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
        raise StateError(f"{path}: malformed state ({type(exc).__name__}: {exc})") from None

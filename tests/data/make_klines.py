"""Generate Binance USDT-M style 1-minute kline CSVs from the seeded price process.

Run ``python -m tests.data.make_klines`` to rewrite the committed fixture; the
replay tests also call :func:`kline_rows` directly to build variants (µs times,
header, corrupted rows) in a temporary directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from hedgegrid_ops.venues.sim.process import MINUTE_NS, PriceProcess
from hedgegrid_ops.venues.sim.replay import KLINE_HEADER

FIXTURE_PATH = Path(__file__).with_name("btcusdt_1m_300.csv")
FIXTURE_SEED = 11
FIXTURE_ROWS = 300
FIXTURE_START_NS = 1_717_200_000_000_000_000  # 2024-06-01T00:00:00Z


def kline_rows(
    rows: int = FIXTURE_ROWS,
    seed: int = FIXTURE_SEED,
    start_ns: int = FIXTURE_START_NS,
    unit: Literal["ms", "us"] = "ms",
) -> list[list[str]]:
    """Kline rows as strings, formatted the way Binance's public dumps format them."""
    per_unit = 1_000_000 if unit == "ms" else 1_000
    process = PriceProcess(seed=seed, initial_price=67000.0, start_ns=start_ns, ticks_per_minute=8)
    out: list[list[str]] = []
    for sample in process.minutes(rows):
        open_time = sample.ts_ns // per_unit
        close_time = (sample.ts_ns + MINUTE_NS) // per_unit - 1
        quote_volume = sample.volume * (sample.open + sample.close) / 2
        taker_buy = sum(t.trade_size for t in sample.ticks if t.aggressor == "BUY")
        taker_buy_quote = sum(
            t.trade_size * t.trade_price for t in sample.ticks if t.aggressor == "BUY"
        )
        out.append(
            [
                str(open_time),
                f"{sample.open:.2f}",
                f"{sample.high:.2f}",
                f"{sample.low:.2f}",
                f"{sample.close:.2f}",
                f"{sample.volume:.3f}",
                str(close_time),
                f"{quote_volume:.5f}",
                str(len(sample.ticks)),
                f"{taker_buy:.3f}",
                f"{taker_buy_quote:.5f}",
                "0",
            ]
        )
    return out


def write_klines(path: Path, rows: list[list[str]], header: bool = False) -> Path:
    """Write rows as CSV with ``\\n`` line endings, optionally with the dump header."""
    lines = [",".join(KLINE_HEADER)] if header else []
    lines.extend(",".join(row) for row in rows)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


if __name__ == "__main__":
    write_klines(FIXTURE_PATH, kline_rows())
    print(f"wrote {FIXTURE_PATH}")

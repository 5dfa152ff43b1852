"""What the simulated venue lists, without importing Nautilus (the CLI checks it early)."""

from __future__ import annotations

SIM_INSTRUMENT = "BTCUSDT-PERP.BINANCE"


def unprovided_instrument(instrument_id: str) -> str | None:
    """Why the simulated venue cannot trade ``instrument_id``, or None when it can.

    Checked before start-up: a strategy subscribed to an instrument nobody publishes
    would otherwise start, wait for data that never comes, and halt.
    """
    if instrument_id == SIM_INSTRUMENT:
        return None
    return (
        f"instrument_id {instrument_id} is not provided by the simulated venue "
        f"(it lists only {SIM_INSTRUMENT})"
    )

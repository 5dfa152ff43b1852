"""Binance request authentication: API key header, HMAC-SHA256 signature, recvWindow.

The signature is checked over the *raw* (still URL-encoded) query string plus the
raw form body, exactly the bytes the client signed; re-encoding decoded
parameters would not reproduce what every client sends.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from enum import Enum

from hedgegrid_ops.venues.binance_local.errors import BinanceError, error, missing

MAX_RECV_WINDOW_MS = 60_000
DEFAULT_RECV_WINDOW_MS = 5_000
# Binance rejects timestamps more than 1 s ahead of its clock.
FUTURE_TOLERANCE_MS = 1_000


class Security(Enum):
    """Binance endpoint security types (what a request must carry)."""

    NONE = "NONE"  # public market data
    USER_STREAM = "USER_STREAM"  # API key only (listenKey)
    SIGNED = "SIGNED"  # API key + timestamp + signature (TRADE / USER_DATA)


@dataclass(frozen=True, slots=True)
class Credentials:
    """The one API key pair the exchange accepts."""

    api_key: str
    api_secret: str


def sign(secret: str, payload: str) -> str:
    """Hex HMAC-SHA256 of ``payload``: what a client appends as ``signature``."""
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def check_api_key(creds: Credentials, header: str | None) -> None:
    if not header:
        raise error(-2014)
    if not hmac.compare_digest(header, creds.api_key):
        raise error(-2015)


def check_signed(
    creds: Credentials,
    raw_query: str,
    raw_body: str,
    params: dict[str, str],
    now_ms: int,
) -> None:
    """Verify timestamp, recvWindow and signature of a SIGNED request."""
    timestamp_text = params.get("timestamp")
    if not timestamp_text:
        raise missing("timestamp")
    try:
        timestamp = int(timestamp_text)
    except ValueError:
        raise missing("timestamp") from None
    recv_text = params.get("recvWindow")
    recv_window = DEFAULT_RECV_WINDOW_MS
    if recv_text:
        try:
            recv_window = int(recv_text)
        except ValueError:
            raise error(-1130, "recvWindow") from None
        if not 0 < recv_window <= MAX_RECV_WINDOW_MS:
            raise error(-1130, "recvWindow")
    if timestamp > now_ms + FUTURE_TOLERANCE_MS or now_ms - timestamp > recv_window:
        raise error(-1021)
    signature = params.get("signature")
    if not signature:
        raise missing("signature")
    payload = _without_signature(raw_query) + raw_body
    if not hmac.compare_digest(sign(creds.api_secret, payload), signature.lower()):
        raise error(-1022)


def _without_signature(raw_query: str) -> str:
    parts = [p for p in raw_query.split("&") if p and not p.startswith("signature=")]
    return "&".join(parts)


__all__ = ["BinanceError", "Credentials", "Security", "check_api_key", "check_signed", "sign"]

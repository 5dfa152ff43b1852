"""WebSocket text frames built once and written as they are to every client.

A server's frames are not masked (RFC 6455 section 5.1), so the bytes of one message's
frame are the same for every connection. The event hub therefore frames each message
once and hands every client the same bytes, several messages joined into one write,
instead of asking each connection's writer to frame (and copy) every message again.
Only uncompressed connections can take such bytes: ``/events`` never negotiates
per-message deflate (``compress=False``).
"""

from __future__ import annotations

import struct

_FIN_TEXT = 0x80 | 0x1  # final fragment, opcode 1 (text)
_SHORT = struct.Struct("!BB")
_MEDIUM = struct.Struct("!BBH")
_LONG = struct.Struct("!BBQ")


def text_frame(payload: bytes) -> bytes:
    """One unmasked, unfragmented text frame carrying ``payload`` (UTF-8 JSON)."""
    size = len(payload)
    if size < 126:
        return _SHORT.pack(_FIN_TEXT, size) + payload
    if size < 1 << 16:
        return _MEDIUM.pack(_FIN_TEXT, 126, size) + payload
    return _LONG.pack(_FIN_TEXT, 127, size) + payload


def text_frames(payloads: list[bytes]) -> bytes:
    """The frames of ``payloads``, in order, as one buffer (one write per client)."""
    return b"".join([text_frame(p) for p in payloads])

"""A WebSocket client that stalls: it completes the upgrade and then never reads again.

The event-stream tests need a peer the server cannot write to: a raw socket with a tiny
receive buffer, the handshake read byte by byte (so nothing past the response head is
consumed), and then silence, exactly like a browser tab frozen by the OS.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket


async def stalled_events_client(port: int, api_key: str, path: str = "/events") -> socket.socket:
    """Connect to ``path`` on 127.0.0.1:``port``, upgrade with ``api_key``, never read again."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, ("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"X-API-Key: {api_key}\r\n\r\n"
    )
    await loop.sock_sendall(sock, request.encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += await loop.sock_recv(sock, 1)
    if not head.startswith(b"HTTP/1.1 101"):
        sock.close()
        raise AssertionError(f"the upgrade was refused: {head!r}")
    return sock

"""A slow-header attacker for tests: ``python -m tests.e2e.slowloris PORT CLIENTS SECONDS``.

Loopback only, bounded in count and time. Each of CLIENTS tasks opens a connection
to 127.0.0.1:PORT, sends a request line and one header, then one more header byte
every second, never finishing the headers; when the server drops it, it reconnects
at once. After SECONDS everything stops. It prints one JSON line: how many
connections were opened and how many the server closed.
"""

from __future__ import annotations

import asyncio
import resource
import sys
import time

import orjson

HOST = "127.0.0.1"  # never anything but loopback


async def _attacker(port: int, deadline: float, stats: dict[str, int]) -> None:
    while time.monotonic() < deadline:
        try:
            reader, writer = await asyncio.open_connection(HOST, port)
        except OSError:
            stats["refused"] += 1
            await asyncio.sleep(0.05)
            continue
        stats["opened"] += 1
        try:
            writer.write(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            while time.monotonic() < deadline:
                await writer.drain()
                try:
                    data = await asyncio.wait_for(reader.read(1024), 1.0)
                except TimeoutError:
                    writer.write(b"a")  # one more byte of a header that never ends
                    continue
                if not data:
                    stats["closed_by_server"] += 1
                    break
        except OSError:
            stats["closed_by_server"] += 1
        finally:
            writer.close()


async def main(port: int, clients: int, seconds: float) -> dict[str, int]:
    deadline = time.monotonic() + seconds
    stats = {"opened": 0, "closed_by_server": 0, "refused": 0}
    await asyncio.gather(*(_attacker(port, deadline, stats) for _ in range(clients)))
    return stats


if __name__ == "__main__":
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    port, clients, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    if not 0 < clients <= 10_000 or not 0 < seconds <= 120:
        raise SystemExit("bounded: at most 10000 clients for at most 120 s")
    result = asyncio.run(main(port, clients, seconds))
    sys.stdout.write(orjson.dumps(result).decode() + "\n")

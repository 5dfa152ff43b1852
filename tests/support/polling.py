"""Wait for a condition: the only way tests wait, so every timeout reads the same."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


def wait_until[T](
    fetch: Callable[[], T],
    predicate: Callable[[T], bool] = bool,
    timeout: float = 30.0,
    what: str = "condition",
    interval: float = 0.25,
) -> T:
    """The first value of ``fetch()`` that satisfies ``predicate`` (blocking).

    An exception from ``fetch`` (say a 503 before the first snapshot) counts as "not
    yet"; on timeout the assertion names the last value or error seen.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = fetch()
        except Exception as exc:
            last = exc
        else:
            if predicate(value):
                return value
            last = value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")
        time.sleep(interval)


async def poll[T](
    fetch: Callable[[], Awaitable[T]],
    predicate: Callable[[T], bool],
    timeout: float,
    what: str,
    interval: float = 0.1,
) -> T:
    """The first awaited value that satisfies ``predicate``; fails with the last one seen."""
    deadline = time.monotonic() + timeout
    last: T = await fetch()
    while not predicate(last):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")
        await asyncio.sleep(interval)
        last = await fetch()
    return last


async def until(predicate: Callable[[], bool], timeout: float, interval: float = 0.02) -> bool:
    """Whether ``predicate()`` became true within ``timeout`` seconds (on the running loop).

    For child-process scenarios that report facts instead of asserting on the spot.
    """
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(interval)
    return True
